//! The subject scheme.
//!
//! | subject | stream | what |
//! | --- | --- | --- |
//! | `gendan.evt.<service>.<event>` | `GENDAN_EVT` | domain events |
//! | `gendan.cmd.<service>.<command>` | `GENDAN_CMD` | saga commands |
//! | `gendan.ext.mes.<event>`, `gendan.ext.wms.<event>` | `GENDAN_EXT` | external systems |
//! | `gendan.dlq.<consumer>` | `GENDAN_DLQ` | dead letters, with reason headers |
//! | `gendan.notify.customer` | `GENDAN_NOTIFY` | customer notices |
//!
//! `<event>` and `<command>` are the snake_case protobuf message name
//! (`WorkOrderPlanned` → `work_order_planned`).

pub const EVENTS: &str = "gendan.evt.>";
pub const COMMANDS: &str = "gendan.cmd.>";
pub const EXTERNAL: &str = "gendan.ext.>";
pub const DEAD_LETTERS: &str = "gendan.dlq.>";
pub const NOTICES: &str = "gendan.notify.>";
/// Customer notices, for notification adapters (webhook, e-mail).
pub const CUSTOMER_NOTICES: &str = "gendan.notify.customer";
pub const MES: &str = "gendan.ext.mes.>";
pub const WMS: &str = "gendan.ext.wms.>";

pub fn event(service: &str, name: &str) -> String {
    format!("gendan.evt.{service}.{name}")
}

pub fn command(service: &str, name: &str) -> String {
    format!("gendan.cmd.{service}.{name}")
}

pub fn commands_for(service: &str) -> String {
    format!("gendan.cmd.{service}.>")
}

pub fn dead_letter(consumer: &str) -> String {
    format!("gendan.dlq.{consumer}")
}

pub fn mes(name: &str) -> String {
    format!("gendan.ext.mes.{name}")
}

/// `gendan.v1.WorkOrderPlanned` → `work_order_planned`.
pub fn token_for_type(type_name: &str) -> String {
    let short = type_name.rsplit('.').next().unwrap_or(type_name);
    let mut token = String::with_capacity(short.len() + 4);
    for (i, ch) in short.chars().enumerate() {
        if ch.is_ascii_uppercase() {
            if i > 0 {
                token.push('_');
            }
            token.push(ch.to_ascii_lowercase());
        } else {
            token.push(ch);
        }
    }
    token
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_become_subject_tokens() {
        assert_eq!(
            token_for_type("gendan.v1.WorkOrderPlanned"),
            "work_order_planned"
        );
        assert_eq!(
            token_for_type("gendan.v1.MesStageStarted"),
            "mes_stage_started"
        );
        assert_eq!(token_for_type("OrderCreated"), "order_created");
    }
}
