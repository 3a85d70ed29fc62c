"""corporate accounts at the till (issue 17.3): signers, credit limit, sign-for-bill charges, payments

Revision ID: 0028_company_accounts
Revises: 0027_reservations

"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = '0028_company_accounts'
down_revision = '0027_reservations'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
