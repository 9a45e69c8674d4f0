#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Dispatch
import Synchronization

/// Where JSON log lines go.
public protocol LogSink: Sendable {
    /// Takes one line, without its newline.
    func write(_ line: String)
    /// Pushes out anything buffered.
    func flush()
}

/// Log lines to a file descriptor (stdout by default), buffered and written at most every 100 ms or
/// per 64 KiB, so logging a request costs an append under a lock, not a system call. Writing happens
/// on the sink's own queue: if the reader stops reading (a full pipe, a stalled journald), requests
/// keep being served, and past `bufferLimit` new lines are dropped and counted instead of piling up.
public final class BufferedLogSink: LogSink {
    private struct Pending {
        var buffer: [UInt8] = []
        var dropped = 0
        var flushQueued = false
    }

    private let fd: Int32
    private let pending = Mutex(Pending())
    /// Serializes the actual writes so lines leave in the order they were appended.
    private let writeLock = Mutex<Void>(())
    private let flushQueue = DispatchQueue(label: "careledger.log-flush")
    private static let flushThreshold = 64 * 1024
    private let bufferLimit: Int

    /// Creates a sink on `fd` and starts its periodic flush.
    public init(fileDescriptor fd: Int32 = 1, bufferLimit: Int = 8 * 1024 * 1024) {
        self.fd = fd
        self.bufferLimit = bufferLimit
        scheduleFlush()
    }

    public func write(_ line: String) {
        let flushNow = pending.withLock { state -> Bool in
            guard state.buffer.count < bufferLimit else {
                state.dropped += 1
                return false
            }
            state.buffer.append(contentsOf: line.utf8)
            state.buffer.append(0x0A)
            guard state.buffer.count >= Self.flushThreshold, !state.flushQueued else { return false }
            state.flushQueued = true
            return true
        }
        if flushNow { flushQueue.async { self.flush() } }
    }

    /// Writes out everything buffered, waiting for the descriptor if it must.
    public func flush() {
        writeLock.withLock { _ in
            var (bytes, dropped) = pending.withLock { state -> ([UInt8], Int) in
                defer {
                    state.buffer.removeAll(keepingCapacity: state.buffer.capacity <= 1024 * 1024)
                    state.dropped = 0
                    state.flushQueued = false
                }
                return (state.buffer, state.dropped)
            }
            if dropped > 0 {
                let now = WallClock.now()
                let time = WallClock.rfc3339(seconds: now.seconds, milliseconds: now.milliseconds)
                bytes += Array(#"{"time":"\#(time)","level":"warning","msg":"log lines dropped while output was blocked","count":\#(dropped)}"#.utf8)
                bytes.append(0x0A)
            }
            bytes.withUnsafeBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let written = Glibc.write(fd, raw.baseAddress.map { $0 + offset }, raw.count - offset)
                    if written <= 0 && errno != EINTR { return }
                    offset += max(written, 0)
                }
            }
        }
    }

    private func scheduleFlush() {
        flushQueue.asyncAfter(deadline: .now() + .milliseconds(100)) { [weak self] in
            guard let self else { return }
            self.flush()
            self.scheduleFlush()
        }
    }
}
