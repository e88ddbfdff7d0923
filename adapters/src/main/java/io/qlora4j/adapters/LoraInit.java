package io.qlora4j.adapters;

/**
 * LoRA's own start (PEFT's {@code init_lora_weights: true}): {@code A ~ U(-1/sqrt(in), 1/sqrt(in))} (PEFT's
 * {@code kaiming_uniform_(a=sqrt(5))}), {@code B = 0}, the base unchanged. {@link LoraAdapters#attach} draws A.
 */
final class LoraInit extends AdapterInit {
    static final LoraInit INSTANCE = new LoraInit();

    private LoraInit() {}

    @Override
    public Object peftValue() {
        return Boolean.TRUE;
    }

    @Override
    public String describe() {
        return "LoRA (A Kaiming-uniform, B = 0)";
    }

    @Override
    public boolean rewritesBase() {
        return false;
    }
}
