"""referral codes, referrer links and referral rewards (issue 15.4)

Revision ID: 0018_referrals
Revises: 0017_campaign_holdout

"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = '0018_referrals'
down_revision = '0017_campaign_holdout'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
