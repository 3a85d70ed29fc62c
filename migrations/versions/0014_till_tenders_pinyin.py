"""the till: tenders per bill, pinyin search text on items

Revision ID: 0014_till_tenders_pinyin
Revises: 0013_import_encoding

"""
from alembic import op
import sqlalchemy as sa

revision = '0014_till_tenders_pinyin'
down_revision = '0013_import_encoding'
branch_labels = None
depends_on = None

METHODS = "method IN ('cash', 'bank_card', 'wechat_pay', 'alipay', 'stored_value', 'other')"


def _search_text(name):
    # A copy of crm/catalog/pinyin.search_text as it was when this migration was written
    # (migrations never import application code).
    import re
    from pypinyin import Style, lazy_pinyin

    def join(parts):
        return re.sub(r"[^0-9a-z]+", "", "".join(parts).lower())
    name = name or ""
    if not re.search(r"[\u3400-\u9fff]", name):
        return join([name])
    initials = join(lazy_pinyin(name, style=Style.FIRST_LETTER, errors="default"))
    full = join(lazy_pinyin(name, style=Style.NORMAL, errors="default"))
    return f"{initials} {full}"[:300]


def upgrade():
    op.create_table('checkout_tenders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('checkout_id', sa.Integer(), nullable=False),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.Column('amount', sa.Integer(), nullable=False),
    sa.CheckConstraint('amount > 0', name=op.f('ck_checkout_tenders_amount_positive')),
    sa.CheckConstraint(METHODS, name=op.f('ck_checkout_tenders_method')),
    sa.ForeignKeyConstraint(['checkout_id'], ['checkouts.id'], name=op.f('fk_checkout_tenders_checkout_id_checkouts'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_checkout_tenders')),
    sa.UniqueConstraint('checkout_id', 'method', name='uq_checkout_tenders_checkout_method')
    )
    # Bills closed before tenders were recorded: the stored-value part is known, the rest was
    # paid by means nobody wrote down.
    op.execute("INSERT INTO checkout_tenders (checkout_id, method, amount) "
               "SELECT id, 'stored_value', wallet_paid FROM checkouts WHERE wallet_paid > 0")
    op.execute("INSERT INTO checkout_tenders (checkout_id, method, amount) "
               "SELECT id, 'other', due FROM checkouts WHERE due > 0")

    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('search_pinyin', sa.String(length=300), nullable=False, server_default=''))
    items = sa.table('items', sa.column('id', sa.Integer()), sa.column('name', sa.String()),
                     sa.column('search_pinyin', sa.String()))
    conn = op.get_bind()
    for item_id, name in conn.execute(sa.select(items.c.id, items.c.name)).all():
        conn.execute(items.update().where(items.c.id == item_id).values(search_pinyin=_search_text(name)))
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.alter_column('search_pinyin', server_default=None)


def downgrade():
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.drop_column('search_pinyin')
    op.drop_table('checkout_tenders')
