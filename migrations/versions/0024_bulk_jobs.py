"""bulk jobs (issue 16): bulk work on an audience, one effect row per member of its snapshot

Revision ID: 0024_bulk_jobs
Revises: 0023_privacy_requests

"""
import sqlalchemy as sa
from alembic import op

revision = '0024_bulk_jobs'
down_revision = '0023_privacy_requests'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('bulk_jobs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=10), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('audience_id', sa.Integer(), nullable=True),
    sa.Column('audience_name', sa.String(length=100), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('done', sa.Integer(), nullable=False),
    sa.Column('applied', sa.Integer(), nullable=False),
    sa.Column('skipped', sa.Integer(), nullable=False),
    sa.Column('undone', sa.Integer(), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('address', sa.String(length=64), nullable=False),
    sa.Column('runner', sa.String(length=32), nullable=True),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('failure', sa.String(length=16), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reversed_by', sa.Integer(), nullable=True),
    sa.Column('reverse_reason', sa.String(length=200), nullable=True),
    sa.Column('reverse_requested_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reversed_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("action IN ('points', 'coupon', 'tag_add', 'tag_remove', 'level')",
                       name=op.f('ck_bulk_jobs_action')),
    sa.CheckConstraint("status IN ('queued', 'running', 'done', 'failed', 'reversing', 'reversed')",
                       name=op.f('ck_bulk_jobs_status')),
    sa.ForeignKeyConstraint(['audience_id'], ['audiences.id'], name=op.f('fk_bulk_jobs_audience_id_audiences'),
                            ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['created_by'], ['staff.id'], name=op.f('fk_bulk_jobs_created_by_staff')),
    sa.ForeignKeyConstraint(['reversed_by'], ['staff.id'], name=op.f('fk_bulk_jobs_reversed_by_staff')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bulk_jobs'))
    )
    with op.batch_alter_table('bulk_jobs', schema=None) as batch_op:
        batch_op.create_index('ix_bulk_jobs_status_lease', ['status', 'lease_until'], unique=False)
        batch_op.create_index(batch_op.f('ix_bulk_jobs_created_at'), ['created_at'], unique=False)

    op.create_table('bulk_job_effects',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('outcome', sa.String(length=8), nullable=False),
    sa.Column('skip_reason', sa.String(length=32), nullable=True),
    sa.Column('points_entry_id', sa.Integer(), nullable=True),
    sa.Column('coupon_id', sa.Integer(), nullable=True),
    sa.Column('previous_level_id', sa.Integer(), nullable=True),
    sa.Column('tag_changed', sa.Boolean(), nullable=False),
    sa.Column('applied_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('undo', sa.String(length=16), nullable=True),
    sa.Column('shortfall', sa.Integer(), nullable=False),
    sa.Column('undo_entry_id', sa.Integer(), nullable=True),
    sa.Column('undone_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("outcome IN ('pending', 'applied', 'skipped')", name=op.f('ck_bulk_job_effects_outcome')),
    sa.ForeignKeyConstraint(['job_id'], ['bulk_jobs.id'], name=op.f('fk_bulk_job_effects_job_id_bulk_jobs'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_bulk_job_effects_member_id_members')),
    sa.ForeignKeyConstraint(['points_entry_id'], ['points_entries.id'],
                            name=op.f('fk_bulk_job_effects_points_entry_id_points_entries')),
    sa.ForeignKeyConstraint(['coupon_id'], ['coupons.id'], name=op.f('fk_bulk_job_effects_coupon_id_coupons')),
    sa.ForeignKeyConstraint(['previous_level_id'], ['member_levels.id'],
                            name=op.f('fk_bulk_job_effects_previous_level_id_member_levels')),
    sa.ForeignKeyConstraint(['undo_entry_id'], ['points_entries.id'],
                            name=op.f('fk_bulk_job_effects_undo_entry_id_points_entries')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bulk_job_effects')),
    # One row per member of a job: a re-run or a second runner can never do a member twice.
    sa.UniqueConstraint('job_id', 'member_id', name='uq_bulk_job_effects_job_member')
    )
    with op.batch_alter_table('bulk_job_effects', schema=None) as batch_op:
        batch_op.create_index('ix_bulk_job_effects_job_outcome', ['job_id', 'outcome'], unique=False)
        batch_op.create_index(batch_op.f('ix_bulk_job_effects_member_id'), ['member_id'], unique=False)


def downgrade():
    with op.batch_alter_table('bulk_job_effects', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bulk_job_effects_member_id'))
        batch_op.drop_index('ix_bulk_job_effects_job_outcome')
    op.drop_table('bulk_job_effects')
    with op.batch_alter_table('bulk_jobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bulk_jobs_created_at'))
        batch_op.drop_index('ix_bulk_jobs_status_lease')
    op.drop_table('bulk_jobs')
