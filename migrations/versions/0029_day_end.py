"""cashier day-end (issue 17.4): who checked a store's day

Revision ID: 0029_day_end
Revises: 0028_company_accounts

"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = '0029_day_end'
down_revision = '0028_company_accounts'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
