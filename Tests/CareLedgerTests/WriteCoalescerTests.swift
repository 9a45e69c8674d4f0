@testable import CareLedger
import Synchronization
import Testing

/// The coalescer is pure concurrency around a writer; these drive it with an in-memory writer that
/// records its batches. The database side (the batched exchange insert) is covered by ExchangeTests.
@Suite struct WriteCoalescerTests {
    private struct Refused: Error {}
    private struct Unavailable: Error {}

    @Test func concurrentWritesShareBatchesAndEachGetsItsOwnOutput() async throws {
        let batches = Mutex<[[Int]]>([])
        let coalescer = WriteCoalescer<Int, Int>(maxBatch: 8, maxWriters: 1, failsEveryone: { _ in false }) { items in
            batches.withLock { $0.append(items) }
            try await Task.sleep(for: .milliseconds(5))
            return items.map { $0 * 10 }
        }
        let outputs = try await withThrowingTaskGroup(of: (Int, Int).self) { group in
            for item in 0..<100 { group.addTask { (item, try await coalescer.submit(item)) } }
            return try await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
        }
        #expect(outputs.count == 100 && outputs.allSatisfy { $0.value == $0.key * 10 })
        let written = batches.withLock { $0 }
        #expect(written.flatMap { $0 }.sorted() == Array(0..<100))
        #expect(written.allSatisfy { $0.count <= 8 })
        // One writer at a time and 5 ms per batch: writes that arrive meanwhile wait and go together.
        #expect(written.count < 100)
    }

    @Test func aFailingWriteFailsAloneAndTheRestOfItsBatchSucceeds() async throws {
        let coalescer = WriteCoalescer<Int, Int>(maxBatch: 64, maxWriters: 1, failsEveryone: { $0 is Unavailable }) { items in
            try await Task.sleep(for: .milliseconds(5))
            if items.contains(13) { throw Refused() }
            return items
        }
        let results = await withTaskGroup(of: (Int, Bool).self) { group in
            for item in 0..<40 {
                group.addTask { (item, (try? await coalescer.submit(item)) == item) }
            }
            return await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
        }
        #expect(results.filter { !$0.value }.map(\.key) == [13])
    }

    @Test func anErrorThatFailsEveryoneIsNotRetriedItemByItem() async throws {
        let calls = Atomic<Int>(0)
        let coalescer = WriteCoalescer<Int, Int>(maxBatch: 64, maxWriters: 1, failsEveryone: { $0 is Unavailable }) { items in
            calls.add(1, ordering: .relaxed)
            try await Task.sleep(for: .milliseconds(20))
            throw Unavailable()
        }
        let failures = await withTaskGroup(of: Bool.self) { group in
            for item in 0..<20 { group.addTask { (try? await coalescer.submit(item)) == nil } }
            return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(failures == 20)
        // Batches, not one call per item plus retries.
        #expect(calls.load(ordering: .relaxed) < 20)
    }
}
