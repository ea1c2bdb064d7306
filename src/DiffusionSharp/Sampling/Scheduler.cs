namespace DiffusionSharp.Sampling;

/// <summary>
/// How the N sampling noise levels are spread over the model's range (the CLI's <c>--scheduler</c>, A1111's
/// "Schedule type"). <see cref="SigmaSchedules.Create"/> builds the list; <see cref="SchedulerNames"/> spells them.
/// </summary>
public enum Scheduler
{
    /// <summary>
    /// Timesteps <c>linspace(T-1, 0, N)</c> through <see cref="NoiseSchedule.TToSigma"/> (k-diffusion <c>get_sigmas</c>).
    /// stable-diffusion.cpp <c>discrete</c> (alias <c>normal</c>), A1111 "Uniform" and "Automatic" for most samplers.
    /// </summary>
    Discrete,

    /// <summary>Karras et al. 2022 eq. 5 with rho = 7 between the model's sigma_min and sigma_max.</summary>
    Karras,

    /// <summary>Noise levels evenly spaced in log sigma between sigma_max and sigma_min.</summary>
    Exponential,

    /// <summary>
    /// Integer "trailing" timesteps <c>T-1-floor(i*T/N)</c> (999, 949, ..., 49 for N = 20): A1111 "Simple",
    /// stable-diffusion.cpp <c>simple</c>, the default of its <c>ddim_trailing</c>.
    /// </summary>
    Simple,

    /// <summary>
    /// A1111's DDIM timesteps <c>1, 1+c, 1+2c, ...</c> below T with c = <c>T // N</c>, then 0 (951, 901, ..., 1 for N = 20):
    /// A1111 "Schedule type: DDIM", ComfyUI <c>ddim_uniform</c>. Like those tools it yields <c>ceil((T-1)/c)</c> steps,
    /// not always N: N = 20 gives 20 steps, N = 30 gives 31.
    /// </summary>
    DdimUniform,

    /// <summary>
    /// The timesteps LCM was distilled on: with k = T / 50, <c>t_i = (50 - floor(i*50/N)) * k - 1</c>
    /// (999, 759, 499, 259 for N = 4). stable-diffusion.cpp <c>lcm</c>; at most 50 steps.
    /// </summary>
    Lcm,
}
