#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Synchronization

/// Wall-clock formatting for the Date header (IMF-fixdate, RFC 9110 §5.6.7) and for log lines
/// (RFC 3339), without Foundation, and cached per second where it is on the hot path.
public enum WallClock {
    /// Seconds and milliseconds since the Unix epoch.
    public static func now() -> (seconds: Int, milliseconds: Int) {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return (spec.tv_sec, spec.tv_nsec / 1_000_000)
    }

    private static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// `Sun, 06 Nov 1994 08:49:37 GMT`.
    public static func imfFixdate(seconds: Int) -> String {
        let t = brokenDown(seconds)
        return "\(days[Int(t.tm_wday)]), \(pad2(t.tm_mday)) \(months[Int(t.tm_mon)]) \(t.tm_year + 1900) "
            + "\(pad2(t.tm_hour)):\(pad2(t.tm_min)):\(pad2(t.tm_sec)) GMT"
    }

    /// `1994-11-06T08:49:37.123Z`.
    public static func rfc3339(seconds: Int, milliseconds: Int) -> String {
        let t = brokenDown(seconds)
        let millis = milliseconds < 10 ? "00\(milliseconds)" : milliseconds < 100 ? "0\(milliseconds)" : "\(milliseconds)"
        return "\(t.tm_year + 1900)-\(pad2(t.tm_mon + 1))-\(pad2(t.tm_mday))T"
            + "\(pad2(t.tm_hour)):\(pad2(t.tm_min)):\(pad2(t.tm_sec)).\(millis)Z"
    }

    private static func brokenDown(_ seconds: Int) -> tm {
        var time = time_t(seconds)
        var result = tm()
        gmtime_r(&time, &result)
        return result
    }

    private static func pad2(_ value: Int32) -> String {
        value < 10 ? "0\(value)" : "\(value)"
    }
}
