"""storefront identity: merchants.store_id (public, unique) and merchants.widget_secret

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 09:00:00.000000

No batch mode here: on SQLite, making a column NOT NULL or adding a constraint rebuilds the
table (copy, DROP, rename), and dropping ``merchants`` with foreign keys on deletes every row
that cascades from it (members, orders, the ledger, whose append-only trigger then aborts).
So SQLite gets the column NOT NULL at once behind an empty default that the back-fill replaces
straight away, and uniqueness comes from a unique index, which both databases add in place.
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def _is_sqlite() -> bool:
    return op.get_bind().dialect.name == 'sqlite'


def upgrade() -> None:
    sqlite = _is_sqlite()
    op.add_column('merchants', sa.Column('store_id', sa.String(length=32), nullable=not sqlite,
                                         server_default='' if sqlite else None))
    op.add_column('merchants', sa.Column('widget_secret', sa.LargeBinary(), nullable=True))

    # Stores that exist already get a random id, like new ones (models.merchant.new_store_id).
    merchants = sa.table('merchants', sa.column('id', sa.BigInteger()),
                         sa.column('store_id', sa.String(length=32)))
    connection = op.get_bind()
    for (merchant_id,) in connection.execute(sa.select(merchants.c.id)).all():
        connection.execute(merchants.update().where(merchants.c.id == merchant_id)
                           .values(store_id=secrets.token_hex(8)))

    if not sqlite:
        op.alter_column('merchants', 'store_id', existing_type=sa.String(length=32),
                        nullable=False)
    op.create_index(op.f('ix_merchants_store_id'), 'merchants', ['store_id'], unique=True)


def downgrade() -> None:
    op.drop_index(op.f('ix_merchants_store_id'), table_name='merchants')
    for column in ('widget_secret', 'store_id'):
        if _is_sqlite():
            # SQLite drops a column in place since 3.35; a batch rebuild would cascade.
            op.execute(f'ALTER TABLE merchants DROP COLUMN {column}')
        else:
            op.drop_column('merchants', column)
