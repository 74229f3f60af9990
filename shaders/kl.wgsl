// The KL penalty between softmaxes, in delta form.
