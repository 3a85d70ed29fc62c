"""transactional notification templates and events, service consent (issue 15.2)

Revision ID: 0019_service_notifications
Revises: 0018_referrals

"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = '0019_service_notifications'
down_revision = '0018_referrals'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
