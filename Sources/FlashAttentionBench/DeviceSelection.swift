import FlashAttention
import FlashAttentionCPU
import FlashAttentionCUDA

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// The device a command runs on, as named by `--device`.
public enum DeviceChoice: String, CaseIterable, Sendable {
  /// The CPU backend: every core, float32 compute. Runs on any machine.
  case cpu
  /// An NVIDIA GPU through the CUDA driver and NVRTC, loaded at run time.
  case cuda
  /// CUDA when a usable GPU is found, else the CPU.
  case auto
}

/// Turns a `DeviceChoice` into a backend; shared by `flash-attn forward/backward` and `bench`.
public enum DeviceSelection {
  /// The backend for `choice`.
  ///
  /// - `cpu`: `CPUBackend()`.
  /// - `cuda`: the CUDA backend, or `AttentionError.backendUnavailable` saying why not
  ///   (no driver, no GPU, no NVRTC).
  /// - `auto`: CUDA when it can be used, else the CPU; `note` is told which device was
  ///   chosen and, on a fallback, why CUDA was not (so a user who expected the GPU sees it).
  ///
  /// `note` defaults to one line on standard error, keeping standard output for results.
  public static func backend(
    for choice: DeviceChoice,
    note: (String) -> Void = DeviceSelection.printToStandardError
  ) throws(AttentionError) -> any AttentionBackend {
    switch choice {
    case .cpu:
      return CPUBackend()
    case .cuda:
      return try CUDABackendFactory.make()
    case .auto:
      do {
        let backend = try CUDABackendFactory.make()
        note("note: --device auto chose CUDA (\(backend.deviceName))")
        return backend
      } catch {
        let backend = CPUBackend()
        note("note: --device auto chose the CPU (\(backend.deviceName)); CUDA is not usable: \(error)")
        return backend
      }
    }
  }

  /// Like `backend(for:note:)`, and also settles the storage dtype the kernels compute from
  /// (see `computeDType`) and checks that the backend can run `problem` with `algorithm`
  /// from it (`AttentionBackend.check`). Under `auto`, a CUDA backend that cannot (an
  /// unsupported headDim, say) gives way to the CPU, and `note` says why.
  public static func backend(
    for choice: DeviceChoice, problem: AttentionProblem, algorithm: AttentionAlgorithm,
    requestedDType: DType?, inputDType: DType,
    note: (String) -> Void = DeviceSelection.printToStandardError
  ) throws(AttentionError) -> (backend: any AttentionBackend, dtype: DType) {
    guard choice == .auto else {
      let backend = try backend(for: choice, note: note)
      let dtype = computeDType(requested: requestedDType, input: inputDType, on: backend)
      try backend.check(problem, algorithm: algorithm, dtype: dtype)
      return (backend, dtype)
    }
    let reason: String
    do {
      let cuda = try CUDABackendFactory.make()
      let dtype = computeDType(requested: requestedDType, input: inputDType, on: cuda)
      do {
        try cuda.check(problem, algorithm: algorithm, dtype: dtype)
        note("note: --device auto chose CUDA (\(cuda.deviceName)), computing from \(dtype)")
        return (cuda, dtype)
      } catch {
        reason = "CUDA cannot run this problem: \(error)"
      }
    } catch {
      reason = "CUDA is not usable: \(error)"
    }
    let cpu = CPUBackend()
    let dtype = computeDType(requested: requestedDType, input: inputDType, on: cpu)
    try cpu.check(problem, algorithm: algorithm, dtype: dtype)
    note("note: --device auto chose the CPU (\(cpu.deviceName)); \(reason)")
    return (cpu, dtype)
  }

  /// The storage dtype kernels compute from: the one asked for; else the inputs' own when
  /// the backend supports it; else bfloat16 when it does (the GPU, given float32 inputs);
  /// else the backend's first.
  public static func computeDType(requested: DType?, input: DType, on backend: any AttentionBackend) -> DType {
    if let requested { return requested }
    let supported = backend.supportedDTypes
    if supported.contains(input) { return input }
    if supported.contains(.bfloat16) { return .bfloat16 }
    return supported.first ?? input
  }

  /// Writes `line` and a newline to standard error.
  public static func printToStandardError(_ line: String) {
    var bytes = Array((line + "\n").utf8)
    _ = bytes.withUnsafeMutableBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
  }
}
