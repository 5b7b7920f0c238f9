import Dispatch
import Synchronization

/// Runs work on a fixed number of threads ("lanes").
enum Parallel {
  /// Calls `body(lane)` once for each lane in `0..<lanes`, concurrently.
  static func forEachLane(_ lanes: Int, _ body: (Int) -> Void) {
    if lanes <= 1 {
      body(0)
    } else {
      // concurrentPerform wants a @Sendable closure; the lanes' bodies share only what the
      // callers made safe to share (disjoint outputs, atomics), hence the unchecked box.
      withoutActuallyEscaping(body) { escapable in
        let box = UncheckedSendable(escapable)
        DispatchQueue.concurrentPerform(iterations: lanes) { box.value($0) }
      }
    }
  }

  /// Runs `body(lane, item)` for every item in `0..<items` on `lanes` threads; each lane takes
  /// the next item from a shared counter (dynamic balance). Items must not depend on which lane
  /// runs them; `setUp(lane)` runs once per lane before its first item (scratch allocation).
  static func forEachItem<LaneState>(
    items: Int, lanes requested: Int,
    setUp: (Int) -> LaneState,
    _ body: (inout LaneState, Int) -> Void
  ) {
    guard items > 0 else { return }
    let lanes = max(1, min(requested, items))
    let counter = WorkCounter()
    forEachLane(lanes) { lane in
      var state = setUp(lane)
      while true {
        let item = counter.next()
        if item >= items { break }
        body(&state, item)
      }
      withExtendedLifetime(state) {}
    }
  }
}

/// The shared "next item" counter of a dynamic work split.
final class WorkCounter: Sendable {
  private let value = Atomic<Int>(0)
  func next() -> Int { value.wrappingAdd(1, ordering: .relaxed).oldValue }
}

struct UncheckedSendable<Value>: @unchecked Sendable {
  let value: Value
  init(_ value: Value) { self.value = value }
}
