"""privacy requests (issue 16): the PIPL request log (export, correction, erasure)

Revision ID: 0023_privacy_requests
Revises: 0022_member_merges

"""
import sqlalchemy as sa
from alembic import op

revision = '0023_privacy_requests'
down_revision = '0022_member_merges'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'privacy_requests',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('member_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=12), nullable=False),
        sa.Column('staff_id', sa.Integer(), nullable=True),
        sa.Column('username', sa.String(length=64), nullable=False),
        sa.Column('reason', sa.String(length=500), nullable=False),
        sa.Column('details', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('export', 'correction', 'erasure')", name=op.f('ck_privacy_requests_kind')),
        sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_privacy_requests_member_id_members')),
        sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], name=op.f('fk_privacy_requests_staff_id_staff')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_privacy_requests')),
    )
    with op.batch_alter_table('privacy_requests', schema=None) as batch_op:
        batch_op.create_index('ix_privacy_requests_member', ['member_id', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_privacy_requests_created_at'), ['created_at'], unique=False)


def downgrade():
    with op.batch_alter_table('privacy_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_privacy_requests_created_at'))
        batch_op.drop_index('ix_privacy_requests_member')
    op.drop_table('privacy_requests')
