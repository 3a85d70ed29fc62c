"""holdout share per campaign and the treated/held-out record per occurrence (issue 15.5)

Revision ID: 0017_campaign_holdout
Revises: 0016_cache_versions

"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = '0017_campaign_holdout'
down_revision = '0016_cache_versions'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
