"""Initial schema: users and their key versions, sessions, conversations, epochs, messages.

Hand-read after autogeneration: named constraints, utf8mb4/InnoDB on MySQL, MEDIUMBLOB for
ciphertext and millisecond DATETIMEs on MySQL.

Revision ID: 0001
Revises:
Create Date: 2026-11-25 16:53:53.828139
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CIPHERTEXT = sa.LargeBinary().with_variant(mysql.MEDIUMBLOB(), "mysql", "mariadb")
TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=3), "mysql", "mariadb")
# Applied by MySQL/MariaDB only; other dialects ignore mysql_* options.
TABLE_OPTIONS: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("username", sa.String(length=32), nullable=False),
        sa.Column("auth_hash", sa.String(length=255), nullable=False),
        sa.Column("kdf_salt", sa.LargeBinary(length=16), nullable=False),
        sa.Column("kdf_iterations", sa.Integer(), nullable=False),
        sa.Column("key_version", sa.Integer(), nullable=False),
        sa.Column("key_blob_nonce", sa.LargeBinary(length=12), nullable=False),
        sa.Column("key_blob_ciphertext", CIPHERTEXT, nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
        **TABLE_OPTIONS,
    )
    op.create_table(
        "conversations",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("title", sa.String(length=100), nullable=True),
        sa.Column("direct_pair", sa.String(length=73), nullable=True),
        sa.Column("created_by", sa.String(length=36), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("rotation_required", sa.Boolean(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_conversations_created_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversations")),
        sa.UniqueConstraint("direct_pair", name=op.f("uq_conversations_direct_pair")),
        **TABLE_OPTIONS,
    )
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_sessions_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sessions")),
        **TABLE_OPTIONS,
    )
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sessions_expires_at"), ["expires_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_sessions_user_id"), ["user_id"], unique=False)

    op.create_table(
        "user_keys",
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("key_version", sa.Integer(), nullable=False),
        sa.Column("ecdh_public", sa.LargeBinary(length=65), nullable=False),
        sa.Column("ecdsa_public", sa.LargeBinary(length=65), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_user_keys_user_id_users")),
        sa.PrimaryKeyConstraint("user_id", "key_version", name=op.f("pk_user_keys")),
        **TABLE_OPTIONS,
    )
    op.create_table(
        "conversation_members",
        sa.Column("conversation_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.Column("joined_at", TIMESTAMP, nullable=False),
        sa.Column("last_read_seq", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_conversation_members_conversation_id_conversations"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_conversation_members_user_id_users")
        ),
        sa.PrimaryKeyConstraint("conversation_id", "user_id", name=op.f("pk_conversation_members")),
        **TABLE_OPTIONS,
    )
    with op.batch_alter_table("conversation_members", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_conversation_members_user_id"), ["user_id"], unique=False
        )

    op.create_table(
        "epochs",
        sa.Column("conversation_id", sa.String(length=36), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("wrapper_id", sa.String(length=36), nullable=False),
        sa.Column("wrapper_key_version", sa.Integer(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_epochs_conversation_id_conversations"),
        ),
        sa.ForeignKeyConstraint(
            ["wrapper_id"], ["users.id"], name=op.f("fk_epochs_wrapper_id_users")
        ),
        sa.PrimaryKeyConstraint("conversation_id", "epoch", name=op.f("pk_epochs")),
        **TABLE_OPTIONS,
    )
    op.create_table(
        "messages",
        sa.Column("conversation_id", sa.String(length=36), nullable=False),
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("message_id", sa.String(length=36), nullable=False),
        sa.Column("sender_id", sa.String(length=36), nullable=False),
        sa.Column("sender_key_version", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("nonce", sa.LargeBinary(length=12), nullable=False),
        sa.Column("ciphertext", CIPHERTEXT, nullable=False),
        sa.Column("signature", sa.LargeBinary(length=64), nullable=False),
        sa.Column("server_time", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_messages_conversation_id_conversations"),
        ),
        sa.ForeignKeyConstraint(
            ["sender_id"], ["users.id"], name=op.f("fk_messages_sender_id_users")
        ),
        sa.PrimaryKeyConstraint("conversation_id", "seq", name=op.f("pk_messages")),
        sa.UniqueConstraint(
            "conversation_id", "message_id", name="uq_messages_conversation_message"
        ),
        **TABLE_OPTIONS,
    )
    op.create_table(
        "epoch_keys",
        sa.Column("conversation_id", sa.String(length=36), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("recipient_id", sa.String(length=36), nullable=False),
        sa.Column("recipient_key_version", sa.Integer(), nullable=False),
        sa.Column("ephemeral_public", sa.LargeBinary(length=65), nullable=False),
        sa.Column("nonce", sa.LargeBinary(length=12), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(length=64), nullable=False),
        sa.Column("signature", sa.LargeBinary(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id", "epoch"],
            ["epochs.conversation_id", "epochs.epoch"],
            name="fk_epoch_keys_epoch_epochs",
        ),
        sa.ForeignKeyConstraint(
            ["recipient_id"], ["users.id"], name=op.f("fk_epoch_keys_recipient_id_users")
        ),
        sa.PrimaryKeyConstraint(
            "conversation_id", "epoch", "recipient_id", name=op.f("pk_epoch_keys")
        ),
        **TABLE_OPTIONS,
    )
    with op.batch_alter_table("epoch_keys", schema=None) as batch_op:
        batch_op.create_index(
            "ix_epoch_keys_recipient", ["recipient_id", "conversation_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("epoch_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_epoch_keys_recipient")

    op.drop_table("epoch_keys")
    op.drop_table("messages")
    op.drop_table("epochs")
    with op.batch_alter_table("conversation_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_conversation_members_user_id"))

    op.drop_table("conversation_members")
    op.drop_table("user_keys")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sessions_user_id"))
        batch_op.drop_index(batch_op.f("ix_sessions_expires_at"))

    op.drop_table("sessions")
    op.drop_table("conversations")
    op.drop_table("users")
