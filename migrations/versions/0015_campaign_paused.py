"""campaigns: a paused state (pause no longer sends a campaign back to draft)

Revision ID: 0015_campaign_paused
Revises: 0014_till_tenders_pinyin

"""
from alembic import op

revision = '0015_campaign_paused'
down_revision = '0014_till_tenders_pinyin'
branch_labels = None
depends_on = None

OLD_STATES = "state IN ('draft', 'scheduled', 'running', 'done', 'cancelled')"
NEW_STATES = "state IN ('draft', 'scheduled', 'running', 'paused', 'done', 'cancelled')"


def upgrade():
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_campaigns_state'), type_='check')
        batch_op.create_check_constraint('state', NEW_STATES)


def downgrade():
    # Before this revision a pause sent a campaign back to draft: that is what a paused one becomes.
    op.execute("UPDATE campaigns SET state = 'draft' WHERE state = 'paused'")
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_campaigns_state'), type_='check')
        batch_op.create_check_constraint('state', OLD_STATES)
