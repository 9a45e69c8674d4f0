import HTTP
import Synchronization

/// Counters of what the gate and the areas decided, for `GET /metrics`: refusals by error code (the
/// consent ones among them), break-the-glass accesses, and requests refused for their rate.
final class ServiceMetrics: Sendable {
    private struct State {
        var denials: [String: Int] = [:]
        var breakTheGlass = 0
        var rateLimited = 0
    }

    private let state = Mutex(State())

    func denied(code: String) {
        state.withLock { $0.denials[code, default: 0] += 1 }
    }

    func brokeTheGlass() {
        state.withLock { $0.breakTheGlass += 1 }
    }

    func rateLimited() {
        state.withLock { $0.rateLimited += 1 }
    }

    func render() -> String {
        let state = self.state.withLock { $0 }
        let consent = ["consent_denied", "consent_revoked"].reduce(0) { $0 + (state.denials[$1] ?? 0) }
        var text = "# HELP careledger_denials_total Requests refused by the access gate or an object check, by error code.\n"
        text += "# TYPE careledger_denials_total counter\n"
        for (code, count) in state.denials.sorted(by: { $0.key < $1.key }) {
            text += "careledger_denials_total{code=\(HTTPMetrics.quoted(code))} \(count)\n"
        }
        text += "# HELP careledger_consent_denials_total Disclosures the patient's consent did not permit (consent_denied, consent_revoked).\n"
        text += "# TYPE careledger_consent_denials_total counter\ncareledger_consent_denials_total \(consent)\n"
        text += "# HELP careledger_break_the_glass_total Emergency accesses without consent (flagged and audited).\n"
        text += "# TYPE careledger_break_the_glass_total counter\ncareledger_break_the_glass_total \(state.breakTheGlass)\n"
        text += "# HELP careledger_rate_limited_total Requests answered 429, for a key's rate or an address's failed authentications.\n"
        text += "# TYPE careledger_rate_limited_total counter\ncareledger_rate_limited_total \(state.rateLimited)\n"
        return text
    }
}
