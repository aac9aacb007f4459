"""Writes to a conversation: find-or-create, row locks, messages and the denormalised list columns."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from inbox.models import Conversation, ConversationTag, Customer, Message, utcnow
from inbox.services.assignment.config import normalise_whatsapp_id
from inbox.services.privacy import is_bsuid

LIST_ROLES = {"customer", "bot", "agent"}  # notes and system lines do not change the list preview
TAG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


def normalise_tag(raw: str) -> str | None:
    tag = raw.strip().lower().replace(" ", "-")
    return tag if TAG_PATTERN.match(tag) else None


def display_phone(whatsapp_id: str | None) -> str | None:
    """'919876543210' -> '+91 98765 43210'; other countries: '+<digits>'."""
    if not whatsapp_id or not whatsapp_id.isdigit():
        return None
    if len(whatsapp_id) == 12 and whatsapp_id.startswith("91"):
        return f"+91 {whatsapp_id[2:7]} {whatsapp_id[7:]}"
    return f"+{whatsapp_id}"


def insert_ignoring_duplicates(
    session: Session, model, values: dict | list[dict], unique_columns: list[str], returning=None
):
    """One row (a dict) or several (a list of dicts with the same keys) in one statement. `returning` (a
    column or the model, for one row): its value or the new object when the row was inserted, None when
    it existed."""
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(model).values(values).on_conflict_do_nothing(index_elements=unique_columns)
    if returning is None:
        session.execute(statement)
        return None
    return session.scalar(statement.returning(returning))


class ConversationStore:
    def __init__(self, session: Session, vip_customer_ids: Iterable[str] = ()):
        self.session = session
        self.vip_customer_ids = set(vip_customer_ids)
        self.is_postgresql = session.get_bind().dialect.name == "postgresql"
        self.created: set[int] = set()  # ids of the conversations get_or_create inserted

    def lock(self, conversation_id: int) -> Conversation:
        """Load the conversation for writing; on PostgreSQL concurrent writers wait on its row lock
        (SQLite write transactions are already serialised by BEGIN IMMEDIATE)."""
        if self.is_postgresql:
            self.session.execute(select(Conversation.id).where(Conversation.id == conversation_id).with_for_update())
        conversation = self.session.get(Conversation, conversation_id, populate_existing=self.is_postgresql)
        assert conversation is not None
        return conversation

    def find_by_sender(self, sender_id: str) -> Conversation | None:
        conversation_id = self.session.scalar(select(Conversation.id).where(Conversation.sender_id == sender_id))
        return self.lock(conversation_id) if conversation_id is not None else None

    def get_or_create(
        self,
        sender_id: str,
        *,
        channel: str | None,
        customer_external_id: str | None = None,
        customer_name: str | None = None,
        phone_number_id: str | None = None,
        wa_id: str | None = None,
        bsuid: str | None = None,
        username: str | None = None,
    ) -> Conversation:
        """`wa_id` (phone digits), `bsuid` and `username` are what the latest WhatsApp message said about
        the customer; any of them may be missing (Meta omits the phone for users with a username)."""
        external_id, wa_id, bsuid, username = self._identity(
            sender_id, channel, customer_external_id, wa_id, bsuid, username
        )
        now = utcnow()
        customer = self._customer(external_id, bsuid)
        if customer is None:
            with self.session.no_autoflush:  # see _customer
                customer = (
                    insert_ignoring_duplicates(  # the new row, loaded as it is inserted
                        self.session,
                        Customer,
                        {
                            "external_id": external_id,
                            "name": customer_name,
                            "phone": display_phone(wa_id),
                            "bsuid": bsuid,
                            "username": username,
                            "is_vip": external_id in self.vip_customer_ids,
                            "created_at": now,
                        },
                        ["external_id"],
                        returning=Customer,
                    )
                    or self.session.scalars(select(Customer).where(Customer.external_id == external_id)).one()
                )
        self._update_customer(customer, external_id, customer_name, wa_id, bsuid, username)
        with self.session.no_autoflush:  # see _customer
            conversation = insert_ignoring_duplicates(  # the new row, loaded as it is inserted
                self.session,
                Conversation,
                {
                    "sender_id": sender_id,
                    "channel": channel or "whatsapp",
                    "customer_id": customer.id,
                    "phone_number_id": phone_number_id,
                    "is_vip": customer.is_vip,
                    "last_message_at": now,
                    "created_at": now,
                    "updated_at": now,
                },
                ["sender_id"],
                returning=Conversation,
            )
        if conversation is not None:
            # New in this transaction: no other can see it, let alone lock it, before this one commits.
            self.created.add(conversation.id)
        else:
            conversation = self.find_by_sender(sender_id)
        assert conversation is not None
        self._update_conversation(conversation, customer, channel, phone_number_id)
        return conversation

    def update_held(
        self,
        conversation: Conversation,
        *,
        channel: str | None,
        customer_name: str | None = None,
        phone_number_id: str | None = None,
        wa_id: str | None = None,
        bsuid: str | None = None,
        username: str | None = None,
    ) -> bool:
        """`get_or_create(conversation.sender_id, ...)` for a conversation this transaction has locked and
        loaded (with its customer): the same changes without a query, when the conversation's customer is
        the one `get_or_create` would find (the same key). False, changing nothing, otherwise."""
        external_id, wa_id, bsuid, username = self._identity(
            conversation.sender_id, channel, None, wa_id, bsuid, username
        )
        customer = conversation.customer
        if customer.external_id != external_id:
            return False  # e.g. keyed by the BSUID, or created by a hand-off call with another id
        self._update_customer(customer, external_id, customer_name, wa_id, bsuid, username)
        self._update_conversation(conversation, customer, channel, phone_number_id)
        return True

    @staticmethod
    def _identity(
        sender_id: str,
        channel: str | None,
        customer_external_id: str | None,
        wa_id: str | None,
        bsuid: str | None,
        username: str | None,
    ) -> tuple[str, str | None, str | None, str | None]:
        """The customer's key, phone digits, BSUID and username as stored for this message."""
        external_id = customer_external_id or sender_id
        if channel in (None, "whatsapp"):
            external_id = normalise_whatsapp_id(external_id)
            wa_id = normalise_whatsapp_id(wa_id) if wa_id else (None if is_bsuid(external_id) else external_id)
            bsuid = bsuid or (external_id if is_bsuid(external_id) else None)
        else:
            wa_id = bsuid = username = None
        return external_id, wa_id, bsuid, username

    def _update_customer(
        self,
        customer: Customer,
        external_id: str,
        customer_name: str | None,
        wa_id: str | None,
        bsuid: str | None,
        username: str | None,
    ) -> None:
        if customer_name and customer.name != customer_name:
            customer.name = customer_name
        if username and customer.username != username:
            customer.username = username  # usernames change; the latest one is shown
        if bsuid and customer.bsuid != bsuid:
            customer.bsuid = bsuid  # a BSUID changes with the phone number; the latest one is the address
        phone = display_phone(wa_id) if wa_id else None
        if phone and customer.phone != phone:
            customer.phone = phone
        if self.vip_customer_ids and self.vip_customer_ids & {external_id, customer.external_id, customer.phone_digits}:
            customer.is_vip = True

    @staticmethod
    def _update_conversation(
        conversation: Conversation, customer: Customer, channel: str | None, phone_number_id: str | None
    ) -> None:
        if channel and conversation.channel != channel:
            conversation.channel = channel
        if phone_number_id and not conversation.phone_number_id:
            conversation.phone_number_id = phone_number_id
        if conversation.is_vip != customer.is_vip:
            conversation.is_vip = customer.is_vip

    def _customer(self, external_id: str, bsuid: str | None) -> Customer | None:
        """The customer under this key, else the one already known by this BSUID (a conversation keyed
        by the phone and a later one keyed by the BSUID are the same person).

        The look by key, and `get_or_create`'s inserts of a new customer and conversation, do not flush the
        session first: customers and conversations are only ever inserted by those statements (never added to
        the session) and their keys never change, so nothing pending can change what they find. Flushing there
        split a batch's message inserts and conversation updates into one set per new conversation (issue 16).
        The look by BSUID still flushes: a BSUID given to another customer earlier in the transaction counts."""
        with self.session.no_autoflush:
            customer = self.session.scalars(select(Customer).where(Customer.external_id == external_id)).one_or_none()
        if customer is None and bsuid:
            customer = self.session.scalars(
                select(Customer).where(Customer.bsuid == bsuid).order_by(Customer.id).limit(1)
            ).first()
        return customer

    def add_message(self, conversation: Conversation, role: str, text: str, at: datetime, **fields) -> Message:
        message = Message(conversation_id=conversation.id, role=role, text=text, created_at=at, **fields)
        self.session.add(message)
        if role in LIST_ROLES:
            self.note_list_message(conversation, role, text, at)
        self.touch(conversation)
        return message

    def note_list_message(self, conversation: Conversation, role: str, text: str, at: datetime) -> None:
        if conversation.last_message_preview is None or at >= conversation.last_message_at:
            conversation.last_message_at = at
            conversation.last_message_preview = text[:200]
            conversation.last_message_role = role

    def remember_order_numbers(self, conversation: Conversation, numbers: Iterable[str]) -> None:
        """Numbers found by Rasa's NLU or the action server (services/order_numbers.py), never read from text here."""
        known = list(conversation.order_numbers or [])
        new = [number for number in numbers if number not in known]
        if new:
            conversation.order_numbers = (known + new)[-20:]

    def add_tags(self, conversation: Conversation, tags: Iterable[str]) -> list[str]:
        added = []
        for raw in tags:
            tag = normalise_tag(raw)
            if tag:
                insert_ignoring_duplicates(
                    self.session,
                    ConversationTag,
                    {"conversation_id": conversation.id, "tag": tag},
                    ["conversation_id", "tag"],
                )
                added.append(tag)
        self.touch(conversation)
        return added

    def touch(self, conversation: Conversation) -> None:
        """Marks the conversation changed: open agent screens pick it up from `updated_at`."""
        conversation.updated_at = utcnow()
