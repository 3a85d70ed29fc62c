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


KINDS = "kind IN ('welcome', 'topup', 'payment', 'points_earned', 'points_expiring', 'level_change')"


def upgrade():
    with op.batch_alter_table('members') as batch:
        batch.add_column(sa.Column('service_consent', sa.Boolean(), nullable=False, server_default=sa.true()))
        batch.add_column(sa.Column('service_consent_at', sa.DateTime(timezone=True), nullable=True))
    op.create_table('notification_templates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('updated_by', sa.Integer(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint(KINDS, name=op.f('ck_notification_templates_kind')),
    sa.CheckConstraint("channel IN ('sms', 'email')", name=op.f('ck_notification_templates_channel')),
    sa.ForeignKeyConstraint(['updated_by'], ['staff.id'], name=op.f('fk_notification_templates_updated_by_staff')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notification_templates')),
    sa.UniqueConstraint('kind', 'channel', name='uq_notification_templates_kind_channel')
    )
    op.create_table('notifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('event_ref', sa.String(length=64), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('send_id', sa.String(length=32), nullable=False),
    sa.Column('address', sa.String(length=255), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('tz', sa.String(length=64), nullable=False),
    sa.Column('quiet', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('reason', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint(KINDS, name=op.f('ck_notifications_kind')),
    sa.CheckConstraint("channel IN ('sms', 'email')", name=op.f('ck_notifications_channel')),
    sa.CheckConstraint("status IN ('pending', 'queued', 'skipped')", name=op.f('ck_notifications_status')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_notifications_member_id_members')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications')),
    sa.UniqueConstraint('kind', 'event_ref', 'channel', name='uq_notifications_event'),
    sa.UniqueConstraint('send_id', name=op.f('uq_notifications_send_id'))
    )
    op.create_index('ix_notifications_member', 'notifications', ['member_id', 'id'], unique=False)
    op.create_index('ix_notifications_pending', 'notifications', ['status', 'id'], unique=False)
    # the templates are cached per worker (core/refcache.py): their namespace's version row
    op.execute("INSERT INTO cache_versions (name, version) VALUES ('notifications', 0)")


def downgrade():
    op.execute("DELETE FROM cache_versions WHERE name = 'notifications'")
    op.drop_index('ix_notifications_pending', table_name='notifications')
    op.drop_index('ix_notifications_member', table_name='notifications')
    op.drop_table('notifications')
    op.drop_table('notification_templates')
    with op.batch_alter_table('members') as batch:
        batch.drop_column('service_consent_at')
        batch.drop_column('service_consent')
