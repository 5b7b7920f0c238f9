import ArgumentParser
import FlashAttention
import FlashAttentionBench

/// `flash-attn backward`: dQ, dK, dV from Q, K, V, O, dO (and LSE) stored as `.npy`.
struct BackwardCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "backward",
    abstract: "Attention backward on .npy files: dQ, dK, dV from Q, K, V, O, dO and the LSE.",
    discussion: """
      O (--out) and dO (--dout) are inputs shaped like Q. The LSE (--lse, float32 \
      (batch, heads, seqlenQ), as written by 'forward --lse') is recomputed by a forward \
      when not given. dQ is shaped like Q, dK and dV like K (summed over the query heads \
      that share a key/value head), all in the dtype of Q. Nothing is written unless every \
      input is valid and the computation succeeds; each output replaces its file atomically.
      """)

  @OptionGroup var options: AttentionOptions

  @Option(name: .customLong("out"), help: ArgumentHelp("Forward output O (input here): .npy, shaped like Q.", valueName: "O.npy"))
  var outputPath: String

  @Option(name: .customLong("dout"), help: ArgumentHelp("Output gradient dO: .npy, shaped like Q.", valueName: "DO.npy"))
  var dOutputPath: String

  @Option(name: .customLong("lse"), help: ArgumentHelp(
    "Forward LSE (input): .npy float32 (batch, heads, seqlenQ); recomputed when absent.", valueName: "LSE.npy"))
  var lsePath: String?

  @Option(name: .customLong("dq"), help: ArgumentHelp("Output dQ: .npy, shaped like Q.", valueName: "DQ.npy"))
  var dqPath: String

  @Option(name: .customLong("dk"), help: ArgumentHelp("Output dK: .npy, shaped like K.", valueName: "DK.npy"))
  var dkPath: String

  @Option(name: .customLong("dv"), help: ArgumentHelp("Output dV: .npy, shaped like V.", valueName: "DV.npy"))
  var dvPath: String

  func run() throws {
    let outputs = [
      OutputFile(option: "--dq", path: dqPath),
      OutputFile(option: "--dk", path: dkPath),
      OutputFile(option: "--dv", path: dvPath),
    ]
    try OutputFiles.check(outputs)

    let inputs = try AttentionInputs.read(options)
    let problem = inputs.problem
    let oFile = InputFile(option: "--out", path: outputPath)
    let doFile = InputFile(option: "--dout", path: dOutputPath)
    let o = try oFile.read()
    try InputShapes.require(oFile, o.shape, equals: inputs.q.shape, like: "the shape of \(inputs.qFile.label)")
    let dO = try doFile.read()
    try InputShapes.require(doFile, dO.shape, equals: inputs.q.shape, like: "the shape of \(inputs.qFile.label)")
    var givenLSE: Tensor<Float>?
    if let lsePath {
      let lseFile = InputFile(option: "--lse", path: lsePath)
      let lse = try lseFile.readFloat32()
      try InputShapes.require(
        lseFile, lse.shape, equals: problem.lseShape,
        like: "(batch, heads, seqlenQ) of \(inputs.qFile.label)")
      givenLSE = lse
    }

    var notes: [String] = []
    let (backend, dtype) = try DeviceSelection.backend(
      for: options.device, problem: problem, algorithm: options.algorithm,
      requestedDType: options.dtype, inputDType: inputs.q.dtype, note: { notes.append($0) })

    let clock = ContinuousClock()
    let start = clock.now
    let lse: Tensor<Float>
    if let givenLSE {
      lse = givenLSE
    } else {
      lse = try backend.forward(
        problem, algorithm: options.algorithm, q: inputs.q, k: inputs.k, v: inputs.v, dtype: dtype
      ).lse
    }
    let result = try backend.backward(
      problem, algorithm: options.algorithm, q: inputs.q, k: inputs.k, v: inputs.v,
      output: o, dOutput: dO, lse: lse, dtype: dtype)
    let elapsed = clock.now - start

    let qType = inputs.q.dtype
    let items = [
      (outputs[0], result.dq.converted(to: qType)),
      (outputs[1], result.dk.converted(to: qType)),
      (outputs[2], result.dv.converted(to: qType)),
    ]
    try OutputFiles.write(items)

    notes.forEach(DeviceSelection.printToStandardError)
    print(RunSummary.line(
      pass: givenLSE == nil ? "backward (LSE recomputed)" : "backward", problem: problem, backend: backend,
      algorithm: options.algorithm, dtype: dtype, elapsed: elapsed, outputs: items.map(\.0.path)))
  }
}
