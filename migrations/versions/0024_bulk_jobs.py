"""placeholder (issue 16): filled in by the work that needs it

Revision ID: 0024_bulk_jobs
Revises: 0023_privacy_requests

"""
revision = '0024_bulk_jobs'
down_revision = '0023_privacy_requests'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
