import FlashAttention
import FlashAttentionBench
import Testing

@Suite struct DeviceSelectionTests {
  let problem = try! AttentionProblem(batch: 1, queryHeads: 2, seqlenQ: 3, headDim: 8)

  @Test func cpuIsTheCPUBackend() throws {
    var notes: [String] = []
    let backend = try DeviceSelection.backend(for: .cpu, note: { notes.append($0) })
    #expect(backend.kind == "cpu")
    #expect(notes.isEmpty, "an explicit choice needs no note")
  }

  @Test func cudaIsTheGPUOrATypedError() {
    // Either a GPU backend (on a machine with CUDA) or `.backendUnavailable` — never a crash.
    do {
      #expect(try DeviceSelection.backend(for: .cuda).kind == "cuda")
    } catch {
      guard case let .backendUnavailable(backend, reason) = error else {
        Issue.record("expected backendUnavailable, got \(error)")
        return
      }
      #expect(backend == "cuda" && !reason.isEmpty)
    }
  }

  @Test func autoNotesWhichDeviceItChose() throws {
    var notes: [String] = []
    let backend = try DeviceSelection.backend(for: .auto, note: { notes.append($0) })
    #expect(notes.count == 1)
    #expect(notes.first?.contains(backend.kind == "cuda" ? "chose CUDA" : "chose the CPU") == true)
  }

  @Test func autoChecksTheProblemAndSettlesTheDType() throws {
    var notes: [String] = []
    let (backend, dtype) = try DeviceSelection.backend(
      for: .auto, problem: problem, algorithm: .flash, requestedDType: nil, inputDType: .float32,
      note: { notes.append($0) })
    #expect(notes.count == 1)
    // float32 inputs: the CPU computes from them as they are; a GPU from bfloat16.
    #expect(dtype == (backend.kind == "cpu" ? .float32 : .bfloat16))
  }

  @Test func computeDTypePrefersWhatWasAskedThenTheInputs() {
    let cpu = try! DeviceSelection.backend(for: .cpu)
    #expect(DeviceSelection.computeDType(requested: .float16, input: .float32, on: cpu) == .float16)
    #expect(DeviceSelection.computeDType(requested: nil, input: .float16, on: cpu) == .float16)
    #expect(DeviceSelection.computeDType(requested: nil, input: .float32, on: cpu) == .float32)
  }

  @Test func explicitChoiceChecksTheProblem() {
    #expect(throws: AttentionError.self) {
      try DeviceSelection.backend(
        for: .cpu, problem: problem, algorithm: .flash, requestedDType: .bfloat16, inputDType: .float32)
    }
  }
}
