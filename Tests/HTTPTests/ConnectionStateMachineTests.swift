@testable import HTTP
import Testing

@Suite struct ConnectionStateMachineTests {
    private let start = MonotonicInstant(nanoseconds: 1_000_000_000)
    private var timeouts: HTTPTimeouts {
        var timeouts = HTTPTimeouts()
        timeouts.headerRead = .seconds(10)
        timeouts.bodyRead = .seconds(30)
        timeouts.keepAliveIdle = .seconds(60)
        timeouts.write = .seconds(5)
        timeouts.lingeringClose = .seconds(2)
        return timeouts
    }

    private func at(_ seconds: Double) -> MonotonicInstant {
        start.advanced(by: .milliseconds(Int64(seconds * 1000)))
    }

    /// A served connection back to idle, at `seconds`.
    private func servedOnce(finishingAt seconds: Double) -> ConnectionStateMachine {
        var machine = ConnectionStateMachine(now: start)
        machine.awaitingInput(phase: .head, now: at(0))
        machine.requestReceived(clientKeepAlive: true)
        machine.writeStarted(now: at(seconds), keepAlive: true)
        _ = machine.writeFinished(now: at(seconds))
        return machine
    }

    @Test func idleConnectionClosesSilentlyAfterKeepAliveTimeout() {
        var machine = servedOnce(finishingAt: 1)
        #expect(machine.state == .idle(since: at(1)))
        #expect(machine.checkTimeouts(now: at(60.9), timeouts: timeouts) == .none)
        #expect(machine.checkTimeouts(now: at(61), timeouts: timeouts) == .close)
        #expect(machine.state == .closed)
    }

    @Test func aConnectionThatNeverSendsAByteIsClosedAtTheHeaderDeadlineNotTheIdleOne() {
        var machine = ConnectionStateMachine(now: start)
        #expect(machine.state == .connected(since: start))
        #expect(machine.checkTimeouts(now: at(9.9), timeouts: timeouts) == .none)
        #expect(machine.checkTimeouts(now: at(10), timeouts: timeouts) == .close, "silently: it asked nothing")
        #expect(machine.state == .closed)
    }

    @Test func aHeadBegunLateKeepsTheDeadlineOfTheAccept() {
        var machine = ConnectionStateMachine(now: start)
        machine.awaitingInput(phase: .betweenRequests, now: at(3))
        machine.awaitingInput(phase: .head, now: at(8))
        #expect(machine.state == .readingHead(since: start))
        #expect(machine.checkTimeouts(now: at(10), timeouts: timeouts) == .sendTimeoutAndClose)
    }

    @Test func headerDeadlineRunsFromTheFirstByteNotTheLast() {
        var machine = servedOnce(finishingAt: 0.5)
        machine.awaitingInput(phase: .head, now: at(1))
        // More bytes trickling in do not move the deadline (slowloris).
        machine.awaitingInput(phase: .head, now: at(9))
        #expect(machine.checkTimeouts(now: at(10.9), timeouts: timeouts) == .none)
        #expect(machine.checkTimeouts(now: at(11), timeouts: timeouts) == .sendTimeoutAndClose)
    }

    @Test func bodyDeadlineStartsWhenTheHeadIsComplete() {
        var machine = ConnectionStateMachine(now: start)
        machine.awaitingInput(phase: .head, now: at(1))
        machine.awaitingInput(phase: .body, now: at(5))
        #expect(machine.checkTimeouts(now: at(34.9), timeouts: timeouts) == .none)
        #expect(machine.checkTimeouts(now: at(35), timeouts: timeouts) == .sendTimeoutAndClose)
    }

    @Test func processingHasNoClientTimeout() {
        var machine = ConnectionStateMachine(now: start)
        machine.requestReceived(clientKeepAlive: true)
        #expect(machine.checkTimeouts(now: at(10_000), timeouts: timeouts) == .none)
        #expect(!machine.acceptsInput)
    }

    @Test func keepAliveResponseReturnsToIdleAndReadsTheNextRequest() {
        var machine = ConnectionStateMachine(now: start)
        machine.requestReceived(clientKeepAlive: true)
        #expect(machine.responseKeepsAlive)
        machine.writeStarted(now: at(1), keepAlive: true)
        #expect(machine.checkTimeouts(now: at(5.9), timeouts: timeouts) == .none)
        #expect(machine.writeFinished(now: at(2)) == .readNextRequest)
        #expect(machine.state == .idle(since: at(2)))
    }

    @Test func stalledWriteIsDropped() {
        var machine = ConnectionStateMachine(now: start)
        machine.requestReceived(clientKeepAlive: true)
        machine.writeStarted(now: at(1), keepAlive: true)
        #expect(machine.checkTimeouts(now: at(6), timeouts: timeouts) == .close)
    }

    @Test func closingResponseLingersThenCloses() {
        var machine = ConnectionStateMachine(now: start)
        machine.requestReceived(clientKeepAlive: false)
        #expect(!machine.responseKeepsAlive)
        machine.writeStarted(now: at(1), keepAlive: false)
        #expect(machine.writeFinished(now: at(1)) == .lingerThenClose)
        #expect(machine.checkTimeouts(now: at(2.9), timeouts: timeouts) == .none)
        #expect(machine.checkTimeouts(now: at(3), timeouts: timeouts) == .close)
    }

    @Test func peerCloseWhileLingeringCloses() {
        var machine = ConnectionStateMachine(now: start)
        machine.requestReceived(clientKeepAlive: false)
        machine.writeStarted(now: at(1), keepAlive: false)
        _ = machine.writeFinished(now: at(1))
        #expect(machine.peerClosed() == .close)
    }

    @Test func peerCloseWhileProcessingLetsTheResponseFinish() {
        var machine = ConnectionStateMachine(now: start)
        machine.requestReceived(clientKeepAlive: true)
        #expect(machine.peerClosed() == .none)
    }

    @Test func drainClosesIdleAndMarksBusyConnectionsLast() {
        var idle = ConnectionStateMachine(now: start)
        #expect(idle.beginDrain() == .close)

        var busy = ConnectionStateMachine(now: start)
        busy.requestReceived(clientKeepAlive: true)
        #expect(busy.beginDrain() == .none)
        #expect(!busy.responseKeepsAlive)
        busy.writeStarted(now: at(1), keepAlive: true)
        #expect(busy.writeFinished(now: at(1)) == .close)
    }

    @Test func checkIntervalFollowsTheShortestTimeout() {
        var timeouts = HTTPTimeouts()
        #expect(timeouts.checkInterval == .seconds(0.5))
        timeouts.headerRead = .milliseconds(200)
        #expect(timeouts.checkInterval == .milliseconds(50))
        timeouts.headerRead = .milliseconds(1)
        #expect(timeouts.checkInterval == .milliseconds(10))
    }
}
