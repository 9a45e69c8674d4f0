#if canImport(Glibc)
import Glibc
#endif
import Foundation
@testable import HTTP
import Synchronization
import Testing
import Telemetry

@Suite struct LogSinkTests {
    /// Nobody reads the pipe: logging must not block the caller, and what could not be kept is
    /// counted in a line of its own once the output moves again.
    @Test func aBlockedOutputNeverBlocksTheCallerAndDropsAreCounted() async throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]) }
        let sink = BufferedLogSink(fileDescriptor: fds[1], bufferLimit: 256 * 1024)
        let line = String(repeating: "x", count: 1000)
        let started = ContinuousClock.now
        for _ in 0..<2_000 { sink.write(line) }  // 2 MB into a 64 KB pipe and a 256 KB buffer
        #expect(ContinuousClock.now - started < .seconds(2), "writes returned although the pipe is full")

        // Drain the pipe while the sink catches up, then look for the count. The reader is a thread of
        // its own, started before `flush` blocks this one until the pipe drains: a task could wait for
        // a cooperative thread that the rest of the run holds, and never come.
        let readEnd = fds[0]
        let reading = DispatchQueue(label: "log-sink-test.reader")
        let collected = Collected()
        reading.async {
            var chunk = [UInt8](repeating: 0, count: 65_536)
            let deadline = ContinuousClock.now + .seconds(10)
            collected.bytes.withLock { collected in
                while ContinuousClock.now < deadline {
                    let count = read(readEnd, &chunk, chunk.count)
                    if count <= 0 { break }
                    collected += chunk[0..<count]
                    if String(decoding: collected.suffix(300), as: UTF8.self).contains("log lines dropped") { break }
                }
            }
        }
        sink.flush()
        close(fds[1])
        // The queue is serial: this runs once the reader is done.
        await withCheckedContinuation { continuation in reading.async { continuation.resume() } }
        let text = collected.bytes.withLock { String(decoding: $0, as: UTF8.self) }
        #expect(text.contains(#""msg":"log lines dropped while output was blocked","count":"#))
        let kept = text.split(separator: "\n").filter { $0 == Substring(line) }.count
        #expect(kept > 0 && kept < 2_000)
    }
}

private final class Collected: Sendable {
    let bytes = Mutex<[UInt8]>([])
}
