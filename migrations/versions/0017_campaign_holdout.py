"""holdout share per campaign and the treated/held-out record per occurrence (issue 15.5)

Revision ID: 0017_campaign_holdout
Revises: 0016_cache_versions

"""
import sqlalchemy as sa
from alembic import op

revision = '0017_campaign_holdout'
down_revision = '0016_cache_versions'
branch_labels = None
depends_on = None

OLD_STATUSES = "status IN ('queued', 'sending', 'sent', 'failed', 'skipped', 'unknown')"
NEW_STATUSES = "status IN ('queued', 'sending', 'sent', 'failed', 'skipped', 'unknown', 'held_out')"


def upgrade():
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.add_column(sa.Column('holdout_percent', sa.Integer(), nullable=False, server_default='0'))
        batch_op.create_check_constraint('holdout_percent', 'holdout_percent >= 0 AND holdout_percent <= 50')
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('arm', sa.String(length=8), nullable=True))
        batch_op.create_check_constraint('arm', "arm IS NULL OR arm IN ('treated', 'holdout')")
        batch_op.drop_constraint(batch_op.f('ck_deliveries_status'), type_='check')
        batch_op.create_check_constraint('status', NEW_STATUSES)
    # Campaign messages from before holdouts: every member who could be reached was treated (a report on an
    # earlier send shows its treated group, with no holdout to compare against).
    op.execute("UPDATE deliveries SET arm = 'treated' WHERE campaign_id IS NOT NULL AND member_id IS NOT NULL "
               "AND NOT (status = 'skipped' AND reason IN ('no_consent', 'no_email', 'no_mobile'))")


def downgrade():
    # Before this revision nobody was held out: a held-out member stays recorded as skipped, so a resumed
    # fan-out of the occurrence still never messages them.
    op.execute("UPDATE deliveries SET status = 'skipped', reason = 'held_out' WHERE status = 'held_out'")
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_deliveries_status'), type_='check')
        batch_op.create_check_constraint('status', OLD_STATUSES)
        batch_op.drop_constraint(batch_op.f('ck_deliveries_arm'), type_='check')
        batch_op.drop_column('arm')
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_campaigns_holdout_percent'), type_='check')
        batch_op.drop_column('holdout_percent')
