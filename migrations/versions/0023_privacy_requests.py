"""placeholder (issue 16): filled in by the work that needs it

Revision ID: 0023_privacy_requests
Revises: 0022_member_merges

"""
revision = '0023_privacy_requests'
down_revision = '0022_member_merges'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
