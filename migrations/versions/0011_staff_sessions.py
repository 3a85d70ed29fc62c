"""server-side staff sessions and shared login-failure counts

Revision ID: 0011_staff_sessions
Revises: 0010_import_jobs

"""
from alembic import op
import sqlalchemy as sa

revision = '0011_staff_sessions'
down_revision = '0010_import_jobs'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
