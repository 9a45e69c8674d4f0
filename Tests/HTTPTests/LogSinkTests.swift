#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization
import Telemetry
import Testing

@Suite struct LogSinkTests {
    /// Nobody reads the pipe: logging must not block the caller, and what could not be kept is
    /// counted in a line of its own once the output moves again.
    @Test func aBlockedOutputNeverBlocksTheCallerAndDropsAreCounted() async throws {
        // A reader that gives up closes its end; the sink's write must then fail, not kill the process.
        signal(SIGPIPE, SIG_IGN)
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        let (readEnd, writeEnd) = (fds[0], fds[1])
        let sink = BufferedLogSink(fileDescriptor: writeEnd, bufferLimit: 256 * 1024)
        let line = String(repeating: "x", count: 1000)
        let started = ContinuousClock.now
        for _ in 0..<2_000 { sink.write(line) }  // 2 MB into a 64 KB pipe and a 256 KB buffer
        #expect(ContinuousClock.now - started < .seconds(2), "writes returned although the pipe is full")

        // The reader drains the pipe to its end (EOF once the write end is closed), on a thread of
        // its own; the flush, which blocks until the pipe drains, on another. Each has a deadline:
        // a reader that stopped early (it once stopped at the "dropped" line while the sink still
        // held lines) would leave the flush blocked forever.
        let collected = Collected()
        let reader = Worker.detached {
            var chunk = [UInt8](repeating: 0, count: 65_536)
            let deadline = ContinuousClock.now + .seconds(20)
            while ContinuousClock.now < deadline {
                let count = read(readEnd, &chunk, chunk.count)
                if count <= 0 { break }
                collected.bytes.withLock { $0 += chunk[0..<count] }
            }
            close(readEnd)
        }
        let flushed = Worker.detached {
            sink.flush()
            close(writeEnd)
        }
        #expect(flushed.wait(seconds: 20), "flush did not return: the pipe was never drained")
        #expect(reader.wait(seconds: 20), "the reader never saw the end of the pipe")
        let text = collected.bytes.withLock { String(decoding: $0, as: UTF8.self) }
        #expect(text.contains(#""msg":"log lines dropped while output was blocked","count":"#))
        let kept = text.split(separator: "\n").filter { $0 == Substring(line) }.count
        #expect(kept > 0 && kept < 2_000)
    }
}

private final class Collected: Sendable {
    let bytes = Mutex<[UInt8]>([])
}

/// A thread running one closure, and a bounded wait for its end.
private final class Worker: Sendable {
    private let done = DispatchSemaphore(value: 0)

    static func detached(_ body: @escaping @Sendable () -> Void) -> Worker {
        let thread = Worker()
        Thread.detachNewThread {
            body()
            thread.done.signal()
        }
        return thread
    }

    func wait(seconds: Int) -> Bool {
        done.wait(timeout: .now() + .seconds(seconds)) == .success
    }
}
