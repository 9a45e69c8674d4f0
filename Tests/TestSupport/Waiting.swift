/// A condition that did not come true by its deadline.
public struct ConditionTimedOut: Error, CustomStringConvertible {
    public let description: String
}

/// Returns as soon as `condition` holds, checking every few milliseconds; throws once `deadline` has
/// passed without it. For waits on state the test cannot be told about (a row appearing, a process
/// exiting): the test waits exactly as long as it must, and never forever.
public func waitUntil(_ what: String, deadline: Duration = .seconds(10), every interval: Duration = .milliseconds(5),
                      _ condition: () async throws -> Bool) async throws {
    let clock = ContinuousClock()
    let end = clock.now + deadline
    while true {
        if try await condition() { return }
        guard clock.now < end else { throw ConditionTimedOut(description: "\(what) did not happen within \(deadline)") }
        try await Task.sleep(for: interval)
    }
}
