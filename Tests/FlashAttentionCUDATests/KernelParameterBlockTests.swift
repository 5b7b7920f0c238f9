import Testing
@testable import FlashAttentionCUDA

@Suite struct ParameterBlockTests {
  /// `struct { float* a; int n; float s; long long m; int k; }` is 32 bytes with C rules.
  @Test func followsCLayoutRules() {
    var p = KernelParameterBlock()
    p.appendPointer(0x1122_3344_5566_7788)
    p.appendInt32(7)
    p.appendFloat(1.5)
    p.appendInt64(-1)
    p.appendInt32(3)
    let bytes = p.finished
    #expect(bytes.count == 32)
    #expect(bytes[0] == 0x88 && bytes[7] == 0x11)
    #expect(bytes[8] == 7)
    #expect(Array(bytes[12..<16]) == [0, 0, 0xC0, 0x3F])
    #expect(Array(bytes[16..<24]) == [UInt8](repeating: 0xFF, count: 8))
    #expect(bytes[24] == 3)
  }

  @Test func intThenPointerIsPadded() {
    var p = KernelParameterBlock()
    p.appendInt32(1)
    p.appendPointer(2)
    #expect(p.finished.count == 16)
    #expect(p.finished[8] == 2)
  }
}
