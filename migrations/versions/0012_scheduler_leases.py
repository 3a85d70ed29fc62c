"""scheduler leadership lease and heartbeat; delivery send ids

Revision ID: 0012_scheduler_leases
Revises: 0011_staff_sessions

"""
from alembic import op
import sqlalchemy as sa

revision = '0012_scheduler_leases'
down_revision = '0011_staff_sessions'
branch_labels = None
depends_on = None

OLD_STATUSES = "status IN ('queued', 'sending', 'sent', 'failed', 'skipped')"
NEW_STATUSES = "status IN ('queued', 'sending', 'sent', 'failed', 'skipped', 'unknown')"


def upgrade():
    op.create_table('scheduler_leases',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('holder', sa.String(length=100), nullable=False),
    sa.Column('generation', sa.Integer(), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_scheduler_leases'))
    )
    with op.batch_alter_table('campaign_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lease_generation', sa.Integer(), nullable=True))
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('send_id', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('claimed_generation', sa.Integer(), nullable=True))
        batch_op.drop_constraint(batch_op.f('ck_deliveries_status'), type_='check')
        batch_op.create_check_constraint('status', NEW_STATUSES)


def downgrade():
    # `unknown` has no older equivalent: such a message may have gone, so it counts as sent-or-failed; failed
    # is the honest word the older code used for it.
    op.execute("UPDATE deliveries SET status = 'failed' WHERE status = 'unknown'")
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_deliveries_status'), type_='check')
        batch_op.create_check_constraint('status', OLD_STATUSES)
        batch_op.drop_column('claimed_generation')
        batch_op.drop_column('send_id')
    with op.batch_alter_table('campaign_runs', schema=None) as batch_op:
        batch_op.drop_column('lease_generation')
    op.drop_table('scheduler_leases')
