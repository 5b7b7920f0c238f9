import ArgumentParser
import FlashAttention
import FlashAttentionBench
import Foundation

/// `flash-attn forward`: O (and LSE) from Q, K, V stored as `.npy`.
struct ForwardCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "forward",
    abstract: "Attention forward on .npy files: O = softmax(scale·QKᵀ + mask)·V, and its LSE.",
    discussion: """
      O is written in the dtype of Q, shaped like Q. LSE (natural log of each query row's sum \
      of exp of the scaled scores; -inf for a row that sees no key) is float32 \
      (batch, heads, seqlenQ). Nothing is written unless every input is valid and the \
      computation succeeds; each output replaces its file atomically.
      """)

  @OptionGroup var options: AttentionOptions

  @Option(name: .customLong("out"), help: ArgumentHelp("Output O: .npy, shaped like Q.", valueName: "O.npy"))
  var outputPath: String

  @Option(name: .customLong("lse"), help: ArgumentHelp(
    "Also write the LSE: .npy float32 (batch, heads, seqlenQ).", valueName: "LSE.npy"))
  var lsePath: String?

  func run() throws {
    let outputFile = OutputFile(option: "--out", path: outputPath)
    let lseFile = lsePath.map { OutputFile(option: "--lse", path: $0) }
    try OutputFiles.check([outputFile] + (lseFile.map { [$0] } ?? []))

    let inputs = try AttentionInputs.read(options)
    var notes: [String] = []
    let (backend, dtype) = try DeviceSelection.backend(
      for: options.device, problem: inputs.problem, algorithm: options.algorithm,
      requestedDType: options.dtype, inputDType: inputs.q.dtype, note: { notes.append($0) })

    let clock = ContinuousClock()
    let start = clock.now
    let result = try backend.forward(
      inputs.problem, algorithm: options.algorithm, q: inputs.q, k: inputs.k, v: inputs.v, dtype: dtype)
    let elapsed = clock.now - start

    var items = [(outputFile, result.output.converted(to: inputs.q.dtype))]
    if let lseFile { items.append((lseFile, .float32(result.lse))) }
    try OutputFiles.write(items)

    notes.forEach(DeviceSelection.printToStandardError)
    print(RunSummary.line(
      pass: "forward", problem: inputs.problem, backend: backend, algorithm: options.algorithm, dtype: dtype,
      elapsed: elapsed, outputs: items.map(\.0.path)))
  }
}

/// Q, K, V read and checked against each other.
struct AttentionInputs {
  var problem: AttentionProblem
  var q: AnyTensor
  var k: AnyTensor
  var v: AnyTensor
  var qFile: InputFile

  static func read(_ options: AttentionOptions) throws(AttentionError) -> AttentionInputs {
    let qFile = InputFile(option: "--q", path: options.queryPath)
    let kFile = InputFile(option: "--k", path: options.keyPath)
    let vFile = InputFile(option: "--v", path: options.valuePath)
    let q = try qFile.read()
    let k = try kFile.read()
    let v = try vFile.read()
    let problem = try InputShapes.problem(
      q: (qFile, q.shape), k: (kFile, k.shape), v: (vFile, v.shape), scale: options.scale, mask: options.mask)
    return AttentionInputs(problem: problem, q: q, k: k, v: v, qFile: qFile)
  }
}

/// The one line a successful command prints on standard output.
enum RunSummary {
  static func line(
    pass: String, problem: AttentionProblem, backend: any AttentionBackend, algorithm: AttentionAlgorithm,
    dtype: DType, elapsed: Duration, outputs: [String]
  ) -> String {
    let c = elapsed.components
    let ms = Double(c.seconds) * 1e3 + Double(c.attoseconds) * 1e-15
    return "\(pass): \(problem) scale=\(problem.scale) \(algorithm.rawValue) \(dtype) on \(backend.kind) "
      + "(\(backend.deviceName)) in \(String(format: "%.2f", ms)) ms -> \(outputs.joined(separator: ", "))"
  }
}
