"""transactional notification templates and events, service consent (issue 15.2)

Revision ID: 0019_service_notifications
Revises: 0018_referrals

"""
import sqlalchemy as sa
from alembic import op

revision = '0019_service_notifications'
down_revision = '0018_referrals'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('members') as batch:
        batch.add_column(sa.Column('service_consent', sa.Boolean(), nullable=False, server_default=sa.true()))
        batch.add_column(sa.Column('service_consent_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('members') as batch:
        batch.drop_column('service_consent_at')
        batch.drop_column('service_consent')
