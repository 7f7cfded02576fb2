//! The hash chain: `hash = SHA-256(prev_hash || canonical JSON of the entry's other fields)`,
//! hex-encoded. Canonical JSON: object keys sorted, no whitespace, timestamps as RFC 3339 with
//! microseconds and `Z`, ids hyphenated lowercase. See `docs/adr/0010-audit-hash-chain.md`.

use chrono::SecondsFormat;
use omnistack_db::audit::AuditRow;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// `value` as canonical JSON: keys sorted (by their UTF-8 bytes), no insignificant whitespace.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// The hash `row` must carry, from its `prev_hash` and its other fields; `None` when its
/// stored details are not JSON (which only a direct edit of the database can cause).
pub fn entry_hash(row: &AuditRow) -> Option<String> {
    let details: Value = serde_json::from_str(&row.details).ok()?;
    let fields = json!({
        "id": row.id.hyphenated().to_string(),
        "seq": row.seq,
        "occurred_at": row.occurred_at.to_rfc3339_opts(SecondsFormat::Micros, true),
        "actor_id": row.actor_id.map(|id| id.hyphenated().to_string()),
        "actor_email": row.actor_email,
        "actor_role": row.actor_role,
        "impersonated_user_id": row.impersonated_user_id.map(|id| id.hyphenated().to_string()),
        "action": row.action,
        "resource_type": row.resource_type,
        "resource_id": row.resource_id,
        "details": details,
        "ip": row.ip,
        "user_agent": row.user_agent,
        "request_id": row.request_id,
    });
    let mut hasher = Sha256::new();
    hasher.update(row.prev_hash.as_bytes());
    hasher.update(canonical_json(&fields).as_bytes());
    Some(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use omnistack_db::audit::GENESIS_HASH;

    fn row() -> AuditRow {
        AuditRow {
            id: uuid::Uuid::parse_str("0190b6a4-7d2e-7c3a-9f00-0123456789ab").unwrap(),
            seq: 1,
            occurred_at: chrono::Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
            actor_id: None,
            actor_email: None,
            actor_role: None,
            impersonated_user_id: None,
            action: "auth.login_failed".into(),
            resource_type: "user".into(),
            resource_id: None,
            details: r#"{"email":"a@example.com"}"#.into(),
            ip: Some("203.0.113.7".into()),
            user_agent: None,
            request_id: Some("req-1".into()),
            prev_hash: GENESIS_HASH.into(),
            hash: String::new(),
        }
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_depth_without_whitespace() {
        let value = json!({"b": 1, "a": {"d": [1, {"z": null, "y": "é\n"}], "c": true}});
        assert_eq!(canonical_json(&value), r#"{"a":{"c":true,"d":[1,{"y":"é\n","z":null}]},"b":1}"#);
    }

    #[test]
    fn the_hash_covers_every_field_and_the_previous_hash() {
        let base = entry_hash(&row()).unwrap();
        assert_eq!(base.len(), 64);
        assert_eq!(entry_hash(&row()).unwrap(), base, "deterministic");
        let mut changed = row();
        changed.details = r#"{"email":"b@example.com"}"#.into();
        assert_ne!(entry_hash(&changed).unwrap(), base);
        let mut changed = row();
        changed.seq = 2;
        assert_ne!(entry_hash(&changed).unwrap(), base);
        let mut changed = row();
        changed.prev_hash = "1".repeat(64);
        assert_ne!(entry_hash(&changed).unwrap(), base);
        let mut changed = row();
        changed.occurred_at += chrono::Duration::microseconds(1);
        assert_ne!(entry_hash(&changed).unwrap(), base);
        let mut reordered = row();
        reordered.details = r#"{ "email" : "a@example.com" }"#.into();
        assert_eq!(entry_hash(&reordered).unwrap(), base, "details are hashed as canonical JSON");
        let mut broken = row();
        broken.details = "not json".into();
        assert_eq!(entry_hash(&broken), None);
    }
}
