//! Checks of the table itself: names, gates, and that every step can end.

use super::*;

fn workflow() -> Workflow {
    Workflow::standard(Timing::default())
}

#[test]
fn step_names_are_unique_and_gates_refer_to_steps_that_come_before() {
    let workflow = workflow();
    let mut seen = std::collections::HashSet::new();
    let mut earlier_phases: Vec<&str> = Vec::new();
    for phase in &workflow.phases {
        let mut earlier = Vec::new();
        for step in &phase.steps {
            assert!(seen.insert(step.name), "duplicate step {}", step.name);
            for gate in step.after {
                // A step waits for steps before it in its phase; an early
                // step may also wait for steps of earlier phases.
                let known = earlier.contains(gate) || (step.early && earlier_phases.contains(gate));
                assert!(known, "{} waits for unknown {gate}", step.name);
            }
            earlier.push(step.name);
        }
        earlier_phases.extend(earlier);
    }
}

#[test]
fn every_step_can_complete_and_every_failure_has_an_answer() {
    let workflow = workflow();
    for (_, step) in workflow.steps() {
        assert!(
            !step.completes_on.is_empty() || matches!(step.kind, StepKind::Decide(_)),
            "{} can never complete",
            step.name
        );
        if step.compensation.is_some() {
            assert!(
                matches!(step.kind, StepKind::Send(_)),
                "{} is compensated but asked nobody",
                step.name
            );
        }
    }
}

#[test]
fn reopened_steps_exist_and_a_loop_reopens_the_failing_step_itself() {
    let workflow = workflow();
    let known = |name: &str| workflow.step(name).is_some();
    for (_, step) in workflow.steps() {
        if let OnFailure::Reopen { steps, limit, .. } = step.on_failure {
            assert!(limit >= 1, "{} loops without a limit", step.name);
            assert!(
                steps.contains(&step.name),
                "{} reopens others but not itself",
                step.name
            );
            for reopened in steps {
                assert!(known(reopened), "{} reopens unknown {reopened}", step.name);
            }
        }
    }
    for spec in decisions::DECISIONS {
        for option in spec.options {
            for effect in option.effects {
                if let Effect::Reopen { steps, .. } = effect {
                    for reopened in *steps {
                        assert!(known(reopened), "{} reopens unknown {reopened}", spec.name);
                    }
                }
            }
        }
    }
}

#[test]
fn every_decision_option_ends_its_question() {
    // An option that neither completes, reopens nor cancels would leave the
    // step waiting for an answer that was already given.
    for spec in decisions::DECISIONS {
        for option in spec.options {
            let ends = option.effects.iter().any(|effect| {
                matches!(
                    effect,
                    Effect::Complete
                        | Effect::Reopen { .. }
                        | Effect::CancelOrder
                        | Effect::KeepWaiting
                        | Effect::AwaitAmendment
                )
            });
            assert!(ends, "{}: {} ends nothing", spec.name, option.answer);
        }
    }
}

#[test]
fn decision_specs_are_found_by_name() {
    let workflow = workflow();
    assert!(workflow.decision_spec("delivery_date").is_some());
    assert!(workflow.decision_spec("final_inspection").is_some());
    assert!(workflow.decision_spec("nothing").is_none());
    for spec in decisions::DECISIONS {
        assert!(
            workflow.decision_spec(spec.name).is_some(),
            "{} is never asked",
            spec.name
        );
        // The wire kind and the stored name are the same word.
        assert_eq!(
            spec.kind.as_str_name(),
            format!("DECISION_KIND_{}", spec.name.to_uppercase())
        );
    }
}

#[test]
fn phases_are_in_workflow_order() {
    let workflow = workflow();
    let order: Vec<i32> = workflow.phases.iter().map(|p| p.phase as i32).collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn the_review_prices_the_order_before_it_is_confirmed() {
    let workflow = workflow();
    let (phase, confirm) = workflow.step("confirm_order").unwrap();
    assert_eq!(phase.phase, Phase::Review);
    assert!(confirm.after.contains(&"review_margin"));
    let (_, estimate) = workflow.step("estimate_costs").unwrap();
    for gate in [
        "check_materials",
        "capacity_check",
        "quote_freight",
        "estimate_inspection",
    ] {
        assert!(
            estimate.after.contains(&gate),
            "estimate_costs waits for {gate}"
        );
    }
    assert!(
        workflow
            .step("estimate_inspection")
            .unwrap()
            .1
            .after
            .is_empty()
    );
    // An amendment, and a new price alone, estimate again and may ask again.
    for step in ["estimate_costs", "review_margin"] {
        assert!(reruns::AMEND_REVIEW.contains(&step));
        assert!(reruns::AMEND_PRICES.contains(&step));
    }
    assert!(workflow.decision_spec("margin").is_some());
}

#[test]
fn the_cost_ledger_is_closed_before_the_order() {
    let workflow = workflow();
    let (phase, close) = workflow.step("close_order").unwrap();
    assert_eq!(phase.phase, Phase::Closed);
    assert_eq!(close.after, &["close_cost_ledger"]);
}
