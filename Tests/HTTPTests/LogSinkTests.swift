#if canImport(Glibc)
import Glibc
#endif
import Foundation
@testable import HTTP
import Testing

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

        // Drain the pipe while the sink catches up, then look for the count.
        let readEnd = fds[0]
        let reader = Task.detached { () -> String in
            var collected = [UInt8]()
            var chunk = [UInt8](repeating: 0, count: 65_536)
            let deadline = ContinuousClock.now + .seconds(10)
            while ContinuousClock.now < deadline {
                let count = read(readEnd, &chunk, chunk.count)
                if count <= 0 { break }
                collected += chunk[0..<count]
                if String(decoding: collected.suffix(300), as: UTF8.self).contains("log lines dropped") { break }
            }
            return String(decoding: collected, as: UTF8.self)
        }
        sink.flush()
        close(fds[1])
        let text = await reader.value
        #expect(text.contains(#""msg":"log lines dropped while output was blocked","count":"#))
        let kept = text.split(separator: "\n").filter { $0 == Substring(line) }.count
        #expect(kept > 0 && kept < 2_000)
    }
}
