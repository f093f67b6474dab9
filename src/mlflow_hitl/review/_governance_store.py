"""Governance in the SQL store: who holds which role, who signed off what, published snapshots, gate policies.

Each change is audited in the same transaction; a sign-off and a snapshot record the chain head
including their own event, so the gate can prove the record it relies on is part of the chain.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pandas as pd
import sqlalchemy as sa

from .._roles import ROLES, signoff_role
from ..checks.registry import SIGNOFF_CHECKS
from ..errors import InputError
from . import _schema as t
from ._audit import event_intact, utc_now
from ._engine import SqlStoreBase
from ._evidence import EVIDENCE_REGISTERED, registration_digest
from ._lookups import load_queue, require_role, roles_of
from ._records import check_user

__all__ = ["SqlGovernance"]

_DIGEST = re.compile("[0-9a-f]{64}")


class SqlGovernance(SqlStoreBase):
    """Roles, sign-offs, verified-label snapshots and gate policies."""

    def grant_role(self, user: str, role: str, *, actor: str) -> None:
        """Give ``user`` a role. Needs ``admin``, except to appoint the very first admin (bootstrap, audited)."""
        self._change_role(user, role, actor=actor, grant=True)

    def revoke_role(self, user: str, role: str, *, actor: str) -> None:
        self._change_role(user, role, actor=actor, grant=False)

    def _change_role(self, user: str, role: str, *, actor: str, grant: bool) -> None:
        user, actor = check_user(user), check_user(actor, "actor")
        if role not in ROLES:
            raise InputError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
        with self._write() as tx:
            admins = tx.conn.execute(sa.select(sa.func.count()).where(t.roles.c.role == "admin")).scalar_one()
            bootstrap = grant and role == "admin" and admins == 0
            if not bootstrap:
                require_role(tx.conn, actor, "admin", f"{'grant' if grant else 'revoke'} roles")
            held = role in roles_of(tx.conn, user)
            if grant and held:
                raise InputError(f"{user} already has the {role!r} role")
            if not grant and not held:
                raise InputError(f"{user} does not have the {role!r} role")
            if not grant and role == "admin" and admins == 1:
                raise InputError(f"{user} is the last admin; grant admin to someone else first")
            if grant:
                tx.conn.execute(
                    sa.insert(t.roles).values(user=user, role=role, granted_by=actor, granted_at=utc_now())
                )
            else:
                tx.conn.execute(sa.delete(t.roles).where(t.roles.c.user == user, t.roles.c.role == role))
            payload: dict[str, Any] = {"role": role}
            if bootstrap:
                payload["bootstrap"] = True
            tx.event(
                actor=actor,
                action="role.grant" if grant else "role.revoke",
                subject=f"user:{user}",
                payload=payload,
            )

    def roles(self, user: str | None = None) -> pd.DataFrame:
        """Columns ``user``, ``role``, ``granted_by``, ``granted_at``."""
        with self._read() as conn:
            query = sa.select(t.roles).order_by(t.roles.c.user, t.roles.c.role)
            if user is not None:
                query = query.where(t.roles.c.user == user)
            rows = conn.execute(query).all()
        return pd.DataFrame(rows, columns=["user", "role", "granted_by", "granted_at"])

    def sign_off(
        self,
        *,
        run_id: str,
        check: str,
        user: str,
        approve: bool,
        note: str | None = None,
        evidence_sha256: str | None = None,
    ) -> dict[str, Any]:
        """``user`` approves or rejects ``check`` of run ``run_id``; needs the check's sign-off role.

        The sign-off records the audit chain head including its own event, and approves the run's
        evidence registration in force when it is recorded. ``evidence_sha256``: the digest of the
        registration the reviewer read; when the run's evidence has been registered again since, the
        sign-off is refused and nothing is written (the check and the write hold the chain head together).
        """
        user = check_user(user)
        if not run_id:
            raise InputError("run_id is required for a sign-off")
        if check not in SIGNOFF_CHECKS:  # a typo signed into the audit chain would stay there for good
            raise InputError(f"unknown check {check!r} to sign off; choose from {', '.join(SIGNOFF_CHECKS)}")
        if evidence_sha256 is not None and not _DIGEST.fullmatch(evidence_sha256):
            raise InputError(
                f"evidence_sha256 must be the 64 hex digits of the evidence digest read, got {evidence_sha256!r}"
            )
        role = signoff_role(check)
        decision = "approve" if approve else "reject"
        payload: dict[str, Any] = {"role": role, "note": note}
        with self._write() as tx:
            require_role(tx.conn, user, role, f"sign off {check}")
            if evidence_sha256 is not None:
                current = self._evidence_in_force(tx.conn, run_id)
                if current != evidence_sha256:
                    raise InputError(
                        f"the evidence of run {run_id} changed since it was read (read "
                        f"{evidence_sha256[:12]}, now {current[:12] if current else 'none registered'}); "
                        "read it again before signing"
                    )
                payload["evidence_sha256"] = evidence_sha256
            seq, digest = tx.event(
                actor=user,
                action=f"signoff.{decision}",
                subject=f"run:{run_id}/check:{check}",
                payload=payload,
            )
            record = {
                "run_id": run_id,
                "check_name": check,
                "user": user,
                "role": role,
                "decision": decision,
                "note": note,
                "audit_seq": seq,
                "audit_hash": digest,
                "created_at": utc_now(),
            }
            tx.conn.execute(sa.insert(t.signoffs).values(**record))
        return record

    def _evidence_in_force(self, conn: sa.engine.Connection, run_id: str) -> str | None:
        """The digest of run ``run_id``'s newest intact evidence registration (the gate's), or ``None``."""
        rows = conn.execute(
            sa.select(t.audit_events)
            .where(
                t.audit_events.c.subject == f"run:{run_id}", t.audit_events.c.action == EVIDENCE_REGISTERED
            )
            .order_by(t.audit_events.c.seq.desc())
        )
        for row in rows.mappings():
            if event_intact(row, self.keyring):
                return registration_digest(json.loads(row["payload"]))
        return None

    def signoffs(self, run_id: str | None = None) -> pd.DataFrame:
        with self._read() as conn:
            query = sa.select(t.signoffs).order_by(t.signoffs.c.id)
            if run_id is not None:
                query = query.where(t.signoffs.c.run_id == run_id)
            rows = conn.execute(query).all()
        return pd.DataFrame(rows, columns=[c.name for c in t.signoffs.columns])

    def record_snapshot(
        self,
        name: str,
        *,
        snapshot_id: str,
        run_id: str | None,
        method: str,
        n_items: int,
        labels_sha256: str,
        manifest_sha256: str,
        actor: str,
    ) -> dict[str, Any]:
        """Record a published verified-label snapshot; ids are never reused (snapshots are immutable)."""
        actor = check_user(actor, "actor")
        with self._write() as tx:
            queue = load_queue(tx.conn, name)
            if tx.conn.execute(sa.select(t.snapshots.c.id).where(t.snapshots.c.id == snapshot_id)).first():
                raise InputError(f"snapshot {snapshot_id!r} already exists; snapshots are immutable")
            seq, digest = tx.event(
                actor=actor,
                action="snapshot.publish",
                subject=f"queue:{name}/snapshot:{snapshot_id}",
                payload={
                    "run_id": run_id,
                    "method": method,
                    "items": n_items,
                    "labels_sha256": labels_sha256,
                    "manifest_sha256": manifest_sha256,
                },
            )
            record = {
                "id": snapshot_id,
                "queue_id": queue.id,
                "run_id": run_id,
                "method": method,
                "n_items": n_items,
                "labels_sha256": labels_sha256,
                "manifest_sha256": manifest_sha256,
                "audit_seq": seq,
                "audit_hash": digest,
                "created_by": actor,
                "created_at": utc_now(),
            }
            tx.conn.execute(sa.insert(t.snapshots).values(**record))
        return record

    def snapshots(self, name: str | None = None, *, run_id: str | None = None) -> pd.DataFrame:
        """Published snapshots, oldest first: all, those of queue ``name``, and/or those in run ``run_id``."""
        with self._read() as conn:
            query = sa.select(t.snapshots, t.queues.c.name.label("queue")).select_from(
                t.snapshots.join(t.queues)
            )
            if name is not None:
                query = query.where(t.queues.c.name == name)
            if run_id is not None:
                query = query.where(t.snapshots.c.run_id == run_id)
            rows = conn.execute(query.order_by(t.snapshots.c.created_at)).all()
        return pd.DataFrame(rows, columns=[*[c.name for c in t.snapshots.columns], "queue"])

    def set_policy(self, model_name: str, *, policy: str, policy_hash: str, actor: str) -> dict[str, Any]:
        """Store a new version of ``model_name``'s gate policy (admin only, audited); returns its record.

        The text is stored as given: parsing and hashing belong to :mod:`mlflow_hitl.gate`.
        """
        actor = check_user(actor, "actor")
        with self._write() as tx:
            require_role(tx.conn, actor, "admin", "set gate policies")
            latest = tx.conn.execute(
                sa.select(sa.func.max(t.policies.c.version)).where(t.policies.c.model_name == model_name)
            ).scalar()
            record = {
                "model_name": model_name,
                "version": int(latest or 0) + 1,
                "policy": policy,
                "policy_hash": policy_hash,
                "set_by": actor,
                "set_at": utc_now(),
            }
            tx.conn.execute(sa.insert(t.policies).values(**record))
            tx.event(
                actor=actor,
                action="policy.set",
                subject=f"model:{model_name}",
                payload={"version": record["version"], "policy_hash": policy_hash},
            )
        return record

    def policy(self, model_name: str) -> dict[str, Any] | None:
        """The policy in force for ``model_name`` (its newest version), or ``None``."""
        with self._read() as conn:
            row = conn.execute(
                sa.select(t.policies)
                .where(t.policies.c.model_name == model_name)
                .order_by(t.policies.c.version.desc())
                .limit(1)
            ).first()
        return None if row is None else dict(row._mapping)
