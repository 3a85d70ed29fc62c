"""background import jobs with progress

Revision ID: 0010_import_jobs
Revises: 0009_unique_reversals

"""
from alembic import op
import sqlalchemy as sa

revision = '0010_import_jobs'
down_revision = '0009_unique_reversals'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
