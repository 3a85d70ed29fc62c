"""member merges (issue 16): the record of each duplicate merged into a survivor

Revision ID: 0022_member_merges
Revises: 0021_member_imports

"""
import sqlalchemy as sa
from alembic import op

revision = '0022_member_merges'
down_revision = '0021_member_imports'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('member_merges',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('from_member_id', sa.Integer(), nullable=False),
    sa.Column('into_member_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=True),
    sa.Column('fields', sa.JSON(), nullable=False),
    sa.Column('from_profile', sa.JSON(), nullable=False),
    sa.Column('moved', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('from_member_id <> into_member_id', name=op.f('ck_member_merges_distinct_members')),
    sa.ForeignKeyConstraint(['from_member_id'], ['members.id'], name=op.f('fk_member_merges_from_member_id_members')),
    sa.ForeignKeyConstraint(['into_member_id'], ['members.id'], name=op.f('fk_member_merges_into_member_id_members')),
    sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], name=op.f('fk_member_merges_staff_id_staff')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_member_merges')),
    sa.UniqueConstraint('from_member_id', name=op.f('uq_member_merges_from_member_id'))
    )
    with op.batch_alter_table('member_merges', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_member_merges_into_member_id'), ['into_member_id'], unique=False)


def downgrade():
    with op.batch_alter_table('member_merges', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_member_merges_into_member_id'))
    op.drop_table('member_merges')
