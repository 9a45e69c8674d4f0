import FoundationEssentials
import Synchronization
import Telemetry

/// What the prescribing checks found, and what followed a check for the same patient and
/// prescriber: prescribed unchanged, prescribed changed, overridden, or abandoned (nothing
/// prescribed within `window`). A check is a dry run, a refused prescription, or the check inside an
/// accepted one. Counted per server instance, in memory.
final class PrescribingMetrics: Sendable {
    enum Outcome: String, CaseIterable, Sendable {
        case unchanged, changed, overridden, abandoned
    }

    private struct Pending {
        let requestHash: String
        let at: Date
    }

    private struct State {
        var findings: [String: Int] = [:]
        var outcomes: [Outcome: Int] = [:]
        var pending: [String: Pending] = [:]
        var checks = 0
        var sweptAt = Date.distantPast
    }

    /// How long a check waits for its prescription before it counts as abandoned.
    let window: TimeInterval
    /// Checks remembered at most; past it the oldest count as abandoned.
    let capacity: Int
    private let state = Mutex(State())

    init(window: TimeInterval = 3600, capacity: Int = 100_000) {
        self.window = window
        self.capacity = capacity
    }

    /// A check whose prescription is still to come (a dry run, or a refused prescription).
    func checked(patientId: String, prescriber: String, requestHash: String, findings: [(code: String, severity: String)], at now: Date) {
        state.withLock { state in
            count(findings, in: &state)
            state.pending[patientId + "\u{0}" + prescriber] = Pending(requestHash: requestHash, at: now)
            expire(&state, now: now)
        }
    }

    /// An accepted prescription: its own check's findings, and the outcome of the check before it
    /// (or of its own check, when there was none).
    func prescribed(patientId: String, prescriber: String, requestHash: String, findings: [(code: String, severity: String)], overridden: Bool, at now: Date) {
        state.withLock { state in
            count(findings, in: &state)
            expire(&state, now: now)
            let earlier = state.pending.removeValue(forKey: patientId + "\u{0}" + prescriber)
            let outcome: Outcome = overridden ? .overridden : (earlier.map { $0.requestHash == requestHash } ?? true) ? .unchanged : .changed
            state.outcomes[outcome, default: 0] += 1
        }
    }

    func render(into out: inout PrometheusText, now: Date = Date()) {
        let state = self.state.withLock { state in
            expire(&state, now: now, force: true)
            return state
        }
        out.single("careledger_prescription_checks_pending", .gauge, help: "Checks still waiting for their prescription (at most \(capacity), for \(Int(window)) s).",
                   state.pending.count)
        out.single("careledger_prescription_checks_total", .counter, help: "Prescribing safety checks run (dry runs, refused and accepted prescriptions, CDS Hooks calls).", state.checks)
        out.family("careledger_prescription_findings_total", .counter, help: "Findings of the prescribing checks, by DetectedIssue code and severity.")
        for (key, count) in state.findings.sorted(by: { $0.key < $1.key }) {
            let parts = key.split(separator: "|", maxSplits: 1).map(String.init)
            out.sample("careledger_prescription_findings_total", [("code", parts.first ?? key), ("severity", parts.last ?? "")], count)
        }
        out.family("careledger_prescription_check_outcomes_total", .counter,
                   help: "What followed a check for the same patient and prescriber: unchanged, changed, overridden, abandoned.")
        for outcome in Outcome.allCases {
            out.sample("careledger_prescription_check_outcomes_total", [("outcome", outcome.rawValue)], state.outcomes[outcome] ?? 0)
        }
    }

    private func count(_ findings: [(code: String, severity: String)], in state: inout State) {
        state.checks += 1
        for finding in findings { state.findings[finding.code + "|" + finding.severity, default: 0] += 1 }
    }

    /// Sweeps at most once a second (every call when `force`): a sweep reads every pending check.
    private func expire(_ state: inout State, now: Date, force: Bool = false) {
        guard force || now.timeIntervalSince(state.sweptAt) >= 1 || state.pending.count > capacity else { return }
        state.sweptAt = now
        let stale = state.pending.filter { now.timeIntervalSince($0.value.at) > window }.map { $0.key }
        for key in stale { state.pending.removeValue(forKey: key) }
        var abandoned = stale.count
        if state.pending.count > capacity {
            let oldest = state.pending.sorted { $0.value.at < $1.value.at }.prefix(state.pending.count - capacity).map { $0.key }
            for key in oldest { state.pending.removeValue(forKey: key) }
            abandoned += oldest.count
        }
        if abandoned > 0 { state.outcomes[.abandoned, default: 0] += abandoned }
    }
}
