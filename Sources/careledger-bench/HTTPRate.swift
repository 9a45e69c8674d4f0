import Foundation
import Synchronization

/// `careledger-bench http-rate <port> <requests/s> <seconds> <connections> <path>`: GET requests on
/// 127.0.0.1 at a fixed rate, whatever the answers' speed (an open loop). wrk keeps each connection
/// busy and sends the next request only when the last is answered, so at saturation it measures
/// its own queue, and when the server stalls it stops sending and records nothing of the stall.
/// Here request n is due at start + n / rate; its latency counts from when it was due, so time spent
/// waiting for a free connection is counted too. `{n:W}` in the path is a random number below
/// `RANGE` (environment), zero-padded to W digits; `KEY` is sent as a bearer token.
/// Prints one JSON line: requests, non-2xx, errors, achieved rate, latency percentiles in ms from
/// the due time, and p99 from the actual send.
enum HTTPRate {
    struct Options {
        let port: UInt16
        let rate: Double
        let seconds: Double
        let connections: Int
        let path: String
        let range: Int
        let key: String?

        init(_ arguments: [String], environment: [String: String]) throws {
            guard arguments.count == 6, let port = UInt16(arguments[1]), let rate = Double(arguments[2]), rate > 0, rate <= 1_000_000,
                  let seconds = Double(arguments[3]), seconds > 0, seconds <= 86_400,
                  let connections = Int(arguments[4]), (1...4096).contains(connections), arguments[5].hasPrefix("/")
            else {
                throw CocoaError(.featureUnsupported, userInfo: [
                    NSLocalizedDescriptionKey: "usage: careledger-bench http-rate <port> <requests/s> <seconds> <connections> <path with {n:W}>"])
            }
            self.port = port
            self.rate = rate
            self.seconds = seconds
            self.connections = connections
            path = arguments[5]
            range = environment["RANGE"].flatMap { Int($0) }.map { max(1, $0) } ?? 1
            key = environment["KEY"]
        }
    }

    /// One request's timings, in nanoseconds.
    struct Sample {
        let sinceDue: UInt64
        let sinceSent: UInt64
    }

    struct Tally {
        var samples: [Sample] = []
        var non2xx = 0
        var errors = 0
    }

    /// Shared by the connection threads: the next request number, and what each thread measured.
    /// Every field is an atomic or behind a mutex.
    final class Run: Sendable {
        let options: Options
        let start: UInt64
        let interval: Double
        let total: Int
        let next = Atomic<Int>(0)
        let tally = Mutex(Tally())

        init(_ options: Options) {
            self.options = options
            interval = 1e9 / options.rate
            total = Int(options.rate * options.seconds)
            // A little later than now, so every thread is connected when the first request is due.
            start = monotonicNanoseconds() + 200_000_000
        }

        func due(_ number: Int) -> UInt64 { start + UInt64(Double(number) * interval) }
    }

    static func run(arguments: [String]) throws {
        let options = try Options(arguments, environment: ProcessInfo.processInfo.environment)
        let run = Run(options)
        let threads = (0..<options.connections).map { _ in
            let thread = Thread { connectionLoop(run) }
            thread.stackSize = 1 << 20
            return thread
        }
        for thread in threads { thread.start() }
        // The threads end after the last due request is answered (or its 10 s timeout).
        let deadline = Date().addingTimeInterval(options.seconds + 30)
        while !threads.allSatisfy({ $0.isFinished }), Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        let elapsed = Double(monotonicNanoseconds() - run.start) / 1e9
        let tally = run.tally.withLock { $0 }
        let fromDue = tally.samples.map(\.sinceDue).sorted(), fromSend = tally.samples.map(\.sinceSent).sorted()
        func ms(_ sorted: [UInt64], _ fraction: Double) -> Double {
            sorted.isEmpty ? 0 : Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * fraction))]) / 1e6
        }
        print(String(format: #"{"rate":%.0f,"connections":%d,"requests":%d,"non2xx":%d,"errors":%d,"achieved":%.0f,"p50ms":%.3f,"p90ms":%.3f,"p99ms":%.3f,"p999ms":%.3f,"maxms":%.3f,"p99FromSendMs":%.3f}"#,
                     options.rate, options.connections, tally.samples.count, tally.non2xx, tally.errors, Double(tally.samples.count) / max(elapsed, 1e-9),
                     ms(fromDue, 0.5), ms(fromDue, 0.9), ms(fromDue, 0.99), ms(fromDue, 0.999), ms(fromDue, 1), ms(fromSend, 0.99)))
    }

    private static func connectionLoop(_ run: Run) {
        var local = Tally()
        var connection: Int32 = -1
        var generator = SystemRandomNumberGenerator()
        // One receive buffer per connection loop: at thousands of requests a second, a fresh 64 KiB
        // per request is work the load generator takes from the two cores it shares with the server.
        var buffer = [UInt8](repeating: 0, count: 65_536)
        defer {
            if connection >= 0 { close(connection) }
            run.tally.withLock { tally in
                tally.samples += local.samples
                tally.non2xx += local.non2xx
                tally.errors += local.errors
            }
        }
        while true {
            let number = run.next.wrappingAdd(1, ordering: .relaxed).oldValue
            guard number < run.total else { return }
            let due = run.due(number)
            sleep(until: due)
            if connection < 0 { connection = connect(port: run.options.port) }
            let request = requestBytes(run.options, using: &generator)
            let sent = monotonicNanoseconds()
            guard connection >= 0, let status = exchange(request, on: connection, buffer: &buffer) else {
                local.errors += 1
                if connection >= 0 { close(connection) }
                connection = -1
                continue
            }
            let answered = monotonicNanoseconds()
            local.samples.append(Sample(sinceDue: answered - min(due, answered), sinceSent: answered - sent))
            if !(200..<300).contains(status) { local.non2xx += 1 }
        }
    }

    private static func requestBytes(_ options: Options, using generator: inout SystemRandomNumberGenerator) -> [UInt8] {
        var path = options.path
        if let open = path.range(of: "{n:"), let close = path[open.upperBound...].firstIndex(of: "}"),
           let width = Int(path[open.upperBound..<close]) {
            let digits = String(Int.random(in: 0..<options.range, using: &generator))
            path.replaceSubrange(open.lowerBound...close, with: String(repeating: "0", count: max(0, width - digits.count)) + digits)
        }
        var head = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        if let key = options.key { head += "Authorization: Bearer \(key)\r\n" }
        return Array((head + "\r\n").utf8)
    }

    private static func connect(port: UInt16) -> Int32 {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { return -1 }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        var one: Int32 = 1
        setsockopt(socket, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        // No request may wait forever: a stalled server counts as errors, not as a hung benchmark.
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(socket, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(socket)
            return -1
        }
        return socket
    }

    /// Sends one request and reads its whole answer (Content-Length framed, as our server answers);
    /// the status, or nil when the connection failed or the answer could not be framed.
    private static func exchange(_ request: [UInt8], on socket: Int32, buffer: inout [UInt8]) -> Int? {
        var written = 0
        while written < request.count {
            let count = request[written...].withUnsafeBytes { send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard count > 0 else { return nil }
            written += count
        }
        var answer: [UInt8] = []
        var headEnd: Int?
        var bodyLength = 0
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { return nil }
            // The end of the head may straddle two reads: search from three bytes before the new ones.
            let searchFrom = max(0, answer.count - 3)
            answer += buffer[0..<count]
            if headEnd == nil, let end = find([13, 10, 13, 10], in: answer, from: searchFrom) {
                headEnd = end + 4
                let head = String(decoding: answer[0..<end], as: UTF8.self).lowercased()
                guard let line = head.split(separator: "\r\n").first(where: { $0.hasPrefix("content-length:") }),
                      let length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)), length >= 0
                else { return nil }
                bodyLength = length
            }
            if let headEnd, answer.count >= headEnd + bodyLength {
                guard answer.count >= 12, let status = Int(String(decoding: answer[9..<12], as: UTF8.self)) else { return nil }
                return status
            }
        }
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8], from first: Int) -> Int? {
        guard haystack.count >= needle.count, first <= haystack.count - needle.count else { return nil }
        for start in first...(haystack.count - needle.count) where haystack[start..<(start + needle.count)].elementsEqual(needle) { return start }
        return nil
    }

    private static func sleep(until due: UInt64) {
        var target = timespec(tv_sec: Int(due / 1_000_000_000), tv_nsec: Int(due % 1_000_000_000))
        while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &target, nil) == EINTR {}
    }
}

func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}
