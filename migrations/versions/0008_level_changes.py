"""level changes and the yearly level review

Revision ID: 0008_level_changes
Revises: eeb56e223deb
Create Date: 2026-11-25 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008_level_changes'
down_revision = 'eeb56e223deb'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('level_reviews',
    sa.Column('year', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('as_of', sa.DateTime(timezone=True), nullable=False),
    sa.Column('window_months', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('year', name=op.f('pk_level_reviews'))
    )
    op.create_table('member_level_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('from_level_id', sa.Integer(), nullable=False),
    sa.Column('to_level_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=8), nullable=False),
    sa.Column('figures', sa.JSON(), nullable=False),
    sa.Column('review_year', sa.Integer(), nullable=True),
    sa.Column('staff_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("reason IN ('spend', 'topup', 'review', 'manual')", name=op.f('ck_member_level_changes_reason')),
    sa.ForeignKeyConstraint(['from_level_id'], ['member_levels.id'], name=op.f('fk_member_level_changes_from_level_id_member_levels')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_member_level_changes_member_id_members'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], name=op.f('fk_member_level_changes_staff_id_staff')),
    sa.ForeignKeyConstraint(['to_level_id'], ['member_levels.id'], name=op.f('fk_member_level_changes_to_level_id_member_levels')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_member_level_changes')),
    sa.UniqueConstraint('member_id', 'review_year', name='uq_member_level_changes_review_year')
    )


def downgrade():
    op.drop_table('member_level_changes')
    op.drop_table('level_reviews')
