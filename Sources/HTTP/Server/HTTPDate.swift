import Synchronization
import Telemetry

/// The Date header value, recomputed at most once a second and shared by every thread that writes
/// responses.
final class DateCache: Sendable {
    static let shared = DateCache()

    private let cached = Mutex<(second: Int, value: String)>((-1, ""))

    func current() -> String {
        let now = WallClock.now().seconds
        return cached.withLock { cached in
            if cached.second != now {
                cached = (now, WallClock.imfFixdate(seconds: now))
            }
            return cached.value
        }
    }
}
