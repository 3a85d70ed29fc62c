"""placeholder (issue 16): filled in by the work that needs it

Revision ID: 0022_member_merges
Revises: 0021_member_imports

"""
revision = '0022_member_merges'
down_revision = '0021_member_imports'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
