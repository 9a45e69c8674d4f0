import Telemetry
import Synchronization

/// Counters of what the gate and the areas decided, for `GET /metrics`: refusals by error code (the
/// consent ones among them), break-the-glass accesses, requests refused for their rate, and stored
/// claim rules that no longer parse, the prescribing checks (`PrescribingMetrics`), and the sizes
/// the areas' in-memory caches report (`gauge`).
final class ServiceMetrics: Sendable {
    private struct Gauge {
        let name: String
        let help: String
        let read: @Sendable () -> Int
    }

    private struct State {
        var denials: [String: Int] = [:]
        var breakTheGlass = 0
        var rateLimited = 0
        var unreadableClaimRules = 0
        var rejectedSignatures: [String: Int] = [:]
        var rejectedSignaturesOther = 0
    }

    /// Devices with their own rejected-signature series; past that, one `other` series, so a flood
    /// of made-up device ids cannot grow the metrics without bound.
    static let signatureSeriesLimit = 10_000

    private let state = Mutex(State())
    private let gauges = Mutex<[Gauge]>([])
    /// The prescribing checks' findings and what followed them.
    let prescribing = PrescribingMetrics()

    /// A size read at every scrape, so a cache that fills can be told from memory that leaks.
    func gauge(_ name: String, help: String, _ read: @escaping @Sendable () -> Int) {
        gauges.withLock { $0.append(Gauge(name: name, help: help, read: read)) }
    }

    func denied(code: String) {
        state.withLock { $0.denials[code, default: 0] += 1 }
    }

    func brokeTheGlass() {
        state.withLock { $0.breakTheGlass += 1 }
    }

    func rateLimited() {
        state.withLock { $0.rateLimited += 1 }
    }

    func unreadableClaimRule() {
        state.withLock { $0.unreadableClaimRules += 1 }
    }

    /// Counts a telemetry signature that did not verify against `deviceId`'s key; returns the
    /// device's count so far (for throttling its alert).
    @discardableResult
    func rejectedSignature(deviceId: String) -> Int {
        state.withLock { state in
            if let count = state.rejectedSignatures[deviceId] {
                state.rejectedSignatures[deviceId] = count + 1
                return count + 1
            }
            guard state.rejectedSignatures.count < Self.signatureSeriesLimit else {
                state.rejectedSignaturesOther += 1
                return state.rejectedSignaturesOther
            }
            state.rejectedSignatures[deviceId] = 1
            return 1
        }
    }

    func render(into out: inout PrometheusText) {
        let state = self.state.withLock { $0 }
        out.family("careledger_denials_total", .counter, help: "Requests refused by the access gate or an object check, by error code.")
        for (code, count) in state.denials.sorted(by: { $0.key < $1.key }) {
            out.sample("careledger_denials_total", [("code", code)], count)
        }
        out.single("careledger_consent_denials_total", .counter,
                   help: "Disclosures the patient's consent did not permit (consent_denied, consent_revoked).",
                   ["consent_denied", "consent_revoked"].reduce(0) { $0 + (state.denials[$1] ?? 0) })
        out.single("careledger_break_the_glass_total", .counter, help: "Emergency accesses without consent (flagged and audited).", state.breakTheGlass)
        out.single("careledger_rate_limited_total", .counter,
                   help: "Requests answered 429, for a key's rate or an address's failed authentications.", state.rateLimited)
        out.single("careledger_claim_rules_unreadable_total", .counter,
                   help: "Times a stored claim rule no longer parsed when a claim was submitted (it decided nothing; the log names it).",
                   state.unreadableClaimRules)
        out.family("careledger_telemetry_rejected_signatures_total", .counter,
                   help: "Telemetry readings refused because the device signature did not verify, by device.")
        for (device, count) in state.rejectedSignatures.sorted(by: { $0.key < $1.key }) {
            out.sample("careledger_telemetry_rejected_signatures_total", [("device", device)], count)
        }
        if state.rejectedSignaturesOther > 0 {
            out.sample("careledger_telemetry_rejected_signatures_total", [("device", "other")], state.rejectedSignaturesOther)
        }
        prescribing.render(into: &out)
        for gauge in gauges.withLock({ $0 }) {
            out.single(gauge.name, .gauge, help: gauge.help, gauge.read())
        }
    }
}
