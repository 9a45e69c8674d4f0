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
/// per 64 KiB, so logging a request costs an append under a lock, not a system call.
public final class BufferedLogSink: LogSink {
    private let fd: Int32
    private let pending = Mutex<[UInt8]>([])
    /// Serializes the actual writes so lines leave in the order they were appended.
    private let writeLock = Mutex<Void>(())
    private let flushQueue = DispatchQueue(label: "careledger.log-flush")
    private static let flushThreshold = 64 * 1024

    /// Creates a sink on `fd` and starts its periodic flush.
    public init(fileDescriptor fd: Int32 = 1) {
        self.fd = fd
        scheduleFlush()
    }

    public func write(_ line: String) {
        let full = pending.withLock { buffer -> Bool in
            buffer.append(contentsOf: line.utf8)
            buffer.append(ByteClass.lf)
            return buffer.count >= Self.flushThreshold
        }
        if full { flush() }
    }

    public func flush() {
        writeLock.withLock { _ in
            let bytes = pending.withLock { buffer -> [UInt8] in
                defer { buffer.removeAll(keepingCapacity: true) }
                return buffer
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
