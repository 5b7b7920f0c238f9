// The benchmark system (`flash-attn bench`) lives here; see issue 4.
import FlashAttention
