"""corporate accounts at the till (issue 17.3): signers, credit limit, sign-for-bill charges, payments

Revision ID: 0028_company_accounts
Revises: 0027_reservations

"""
import sqlalchemy as sa
from alembic import op

revision = '0028_company_accounts'
down_revision = '0027_reservations'
branch_labels = None
depends_on = None

OLD_METHODS = "method IN ('cash', 'bank_card', 'wechat_pay', 'alipay', 'stored_value', 'other')"
NEW_METHODS = "method IN ('cash', 'bank_card', 'wechat_pay', 'alipay', 'stored_value', 'other', 'company_account')"


def upgrade():
    op.create_table('company_accounts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('company_id', sa.Integer(), nullable=False),
    sa.Column('credit_limit', sa.Integer(), nullable=False),
    sa.Column('owed', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('credit_limit >= 0', name=op.f('ck_company_accounts_credit_limit_non_negative')),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_company_accounts_company_id_companies')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_company_accounts')),
    sa.UniqueConstraint('company_id', name=op.f('uq_company_accounts_company_id'))
    )
    op.create_table('company_signers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['company_accounts.id'],
                            name=op.f('fk_company_signers_account_id_company_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_company_signers_member_id_members')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_company_signers')),
    sa.UniqueConstraint('account_id', 'member_id', name='uq_company_signers_account_member')
    )
    op.create_index(op.f('ix_company_signers_member_id'), 'company_signers', ['member_id'], unique=False)
    op.create_table('company_account_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('amount', sa.Integer(), nullable=False),
    sa.Column('checkout_id', sa.Integer(), nullable=True),
    sa.Column('member_id', sa.Integer(), nullable=True),
    sa.Column('store_id', sa.Integer(), nullable=True),
    sa.Column('method', sa.String(length=16), nullable=True),
    sa.Column('reference', sa.String(length=100), nullable=True),
    sa.Column('received_on', sa.Date(), nullable=True),
    sa.Column('note', sa.String(length=200), nullable=True),
    sa.Column('staff_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('charge', 'reversal', 'payment', 'adjustment')",
                       name=op.f('ck_company_account_entries_kind')),
    sa.CheckConstraint('amount != 0', name=op.f('ck_company_account_entries_amount_not_zero')),
    sa.CheckConstraint("(kind = 'charge' AND amount > 0) OR (kind IN ('reversal', 'payment') AND amount < 0) "
                       "OR kind = 'adjustment'", name=op.f('ck_company_account_entries_amount_sign')),
    sa.ForeignKeyConstraint(['account_id'], ['company_accounts.id'],
                            name=op.f('fk_company_account_entries_account_id_company_accounts')),
    sa.ForeignKeyConstraint(['checkout_id'], ['checkouts.id'],
                            name=op.f('fk_company_account_entries_checkout_id_checkouts')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_company_account_entries_member_id_members')),
    sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], name=op.f('fk_company_account_entries_staff_id_staff')),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_company_account_entries_store_id_stores')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_company_account_entries')),
    sa.UniqueConstraint('checkout_id', 'kind', name='uq_company_account_entries_checkout_kind')
    )
    op.create_index('ix_company_account_entries_account_created', 'company_account_entries',
                    ['account_id', 'created_at'], unique=False)
    # A bill may now be signed to a company account: the tender method's CHECK is recreated
    # (SQLite rebuilds the table for it: batch mode).
    with op.batch_alter_table('checkout_tenders', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_checkout_tenders_method'), type_='check')
        batch_op.create_check_constraint('method', NEW_METHODS)


def downgrade():
    # Signed bills become "paid by means not stated" (merged into an `other` tender if the bill has one).
    op.execute("UPDATE checkout_tenders SET amount = amount + (SELECT t.amount FROM checkout_tenders t "
               "WHERE t.checkout_id = checkout_tenders.checkout_id AND t.method = 'company_account') "
               "WHERE method = 'other' AND checkout_id IN (SELECT checkout_id FROM checkout_tenders "
               "WHERE method = 'company_account')")
    op.execute("DELETE FROM checkout_tenders WHERE method = 'company_account' AND checkout_id IN "
               "(SELECT checkout_id FROM checkout_tenders WHERE method = 'other')")
    op.execute("UPDATE checkout_tenders SET method = 'other' WHERE method = 'company_account'")
    with op.batch_alter_table('checkout_tenders', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_checkout_tenders_method'), type_='check')
        batch_op.create_check_constraint('method', OLD_METHODS)
    op.drop_index('ix_company_account_entries_account_created', table_name='company_account_entries')
    op.drop_table('company_account_entries')
    op.drop_index(op.f('ix_company_signers_member_id'), table_name='company_signers')
    op.drop_table('company_signers')
    op.drop_table('company_accounts')
