import FlashAttention

/// One `.npy` input named on the command line: errors name both the option and the path,
/// e.g. `--k keys.npy: truncated: ...`.
struct InputFile {
  let option: String
  let path: String

  var label: String { "\(option) \(path)" }

  func read() throws(AttentionError) -> AnyTensor {
    do {
      return try NumPyFile.read(path: path)
    } catch {
      throw relabelled(error)
    }
  }

  func readFloat32() throws(AttentionError) -> Tensor<Float> {
    do {
      return try NumPyFile.readFloat32(path: path)
    } catch {
      throw relabelled(error)
    }
  }

  private func relabelled(_ error: AttentionError) -> AttentionError {
    if case let .file(_, reason) = error { return .file(path: label, reason: reason) }
    return error
  }
}

/// Checks the shapes of the attention operands against each other before any work, with
/// messages that name the file and give the whole expected shape.
enum InputShapes {
  static func shapeText(_ s: [Int]) -> String { "(" + s.map(String.init).joined(separator: ", ") + ")" }

  /// Q `(batch, seqlenQ, heads, headDim)`, K and V `(batch, seqlenK, kvHeads, headDim)`
  /// with kvHeads dividing heads; builds the problem.
  static func problem(
    q: (InputFile, [Int]), k: (InputFile, [Int]), v: (InputFile, [Int]),
    scale: Float?, mask: AttentionMask
  ) throws(AttentionError) -> AttentionProblem {
    let layout = "4 dimensions (batch, seqlen, heads, headDim)"
    for (file, shape) in [q, k, v] where shape.count != 4 {
      throw .shapeMismatch(argument: file.label, shape: shape, expected: layout)
    }
    let (qs, ks, vs) = (q.1, k.1, v.1)
    let heads = qs[2]
    let divisors = heads > 0 ? (1...heads).filter { heads % $0 == 0 }.map(String.init) : []
    let kvHeadsText = divisors.count <= 8 ? divisors.joined(separator: "|") : "a divisor of \(heads)"
    let expectedK = "(\(qs[0]), seqlenK, \(kvHeadsText), \(qs[3])) to go with \(q.0.label) \(shapeText(qs))"
    guard ks[0] == qs[0], ks[3] == qs[3] else {
      throw .shapeMismatch(argument: k.0.label, shape: ks, expected: expectedK)
    }
    guard ks[2] >= 1, heads % ks[2] == 0 else {
      throw .shapeMismatch(
        argument: k.0.label, shape: ks,
        expected: "\(expectedK): its \(ks[2]) heads must divide the \(heads) query heads")
    }
    guard vs == ks else {
      throw .shapeMismatch(argument: v.0.label, shape: vs, expected: "\(shapeText(ks)), the shape of \(k.0.label)")
    }
    return try AttentionProblem(
      batch: qs[0], queryHeads: qs[2], keyValueHeads: ks[2], seqlenQ: qs[1], seqlenK: ks[1],
      headDim: qs[3], scale: scale, mask: mask)
  }

  /// Requires `shape` to equal `expected`, naming `file` and what it must match.
  static func require(_ file: InputFile, _ shape: [Int], equals expected: [Int], like what: String) throws(AttentionError) {
    guard shape == expected else {
      throw .shapeMismatch(argument: file.label, shape: shape, expected: "\(shapeText(expected)), \(what)")
    }
  }
}
