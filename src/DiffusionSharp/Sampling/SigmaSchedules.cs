using System.Globalization;

namespace DiffusionSharp.Sampling;

/// <summary>
/// Builds the descending list of sampling noise levels <c>sigma_0 &gt; sigma_1 &gt; ... &gt; sigma_N = 0</c> that a
/// <see cref="Sampler"/> walks: N steps, N + 1 values. Every builder accepts 1 &lt;= N &lt;= T (the training timesteps;
/// 1000 for SD) — finer than the training grid gains nothing, and the integer-timestep spacings would repeat a
/// timestep — and <see cref="Scheduler.Lcm"/> at most 50. N = 1 gives <c>[sigma_max, 0]</c> for every spacing except
/// <see cref="Scheduler.DdimUniform"/>, which needs N &gt;= 2 (see there).
/// </summary>
public static class SigmaSchedules
{
    /// <summary>The number of timesteps LCM was distilled from (diffusers <c>original_inference_steps</c>).</summary>
    public const int LcmOriginalSteps = 50;

    /// <summary>The sigmas of <paramref name="scheduler"/> for <paramref name="steps"/> steps on <paramref name="schedule"/>.</summary>
    public static double[] Create(Scheduler scheduler, NoiseSchedule schedule, int steps) => scheduler switch
    {
        Scheduler.Discrete => Discrete(schedule, steps),
        Scheduler.Karras => Karras(schedule, steps),
        Scheduler.Exponential => Exponential(schedule, steps),
        Scheduler.Simple => Simple(schedule, steps),
        Scheduler.DdimUniform => DdimUniform(schedule, steps),
        Scheduler.Lcm => Lcm(schedule, steps),
        _ => throw new ArgumentOutOfRangeException(nameof(scheduler), scheduler, "Not a defined scheduler."),
    };

    /// <summary>k-diffusion <c>DiscreteSchedule.get_sigmas(n)</c>: <c>t_k = (T-1)(N-1-k)/(N-1)</c> through <see cref="NoiseSchedule.TToSigma"/>.</summary>
    public static double[] Discrete(NoiseSchedule schedule, int steps)
    {
        CheckSteps(schedule, steps, schedule.TrainSteps, Scheduler.Discrete);
        var sigmas = new double[steps + 1];
        int tMax = schedule.TrainSteps - 1;
        for (int k = 0; k < steps; k++)
            sigmas[k] = schedule.TToSigma(steps == 1 ? tMax : (double)tMax * (steps - 1 - k) / (steps - 1));
        return sigmas;
    }

    /// <summary>k-diffusion <c>get_sigmas_karras</c>: <c>(smax^(1/rho) + k/(N-1) (smin^(1/rho) - smax^(1/rho)))^rho</c>, rho = 7.</summary>
    public static double[] Karras(NoiseSchedule schedule, int steps)
    {
        CheckSteps(schedule, steps, schedule.TrainSteps, Scheduler.Karras);
        const double rho = 7;
        double minInvRho = Math.Pow(schedule.SigmaMin, 1 / rho);
        double maxInvRho = Math.Pow(schedule.SigmaMax, 1 / rho);
        var sigmas = new double[steps + 1];
        for (int k = 0; k < steps; k++)
        {
            double ramp = steps == 1 ? 0 : (double)k / (steps - 1);
            sigmas[k] = Math.Pow(maxInvRho + ramp * (minInvRho - maxInvRho), rho);
        }
        return sigmas;
    }

    /// <summary>k-diffusion <c>get_sigmas_exponential</c>: <c>exp(linspace(ln smax, ln smin, N))</c>.</summary>
    public static double[] Exponential(NoiseSchedule schedule, int steps)
    {
        CheckSteps(schedule, steps, schedule.TrainSteps, Scheduler.Exponential);
        double logMax = Math.Log(schedule.SigmaMax), logMin = Math.Log(schedule.SigmaMin);
        var sigmas = new double[steps + 1];
        for (int k = 0; k < steps; k++)
        {
            double ramp = steps == 1 ? 0 : (double)k / (steps - 1);
            sigmas[k] = Math.Exp(logMax + ramp * (logMin - logMax));
        }
        return sigmas;
    }

    /// <summary>
    /// stable-diffusion.cpp <c>SimpleScheduler</c> (A1111 <c>simple_scheduler</c>): timestep <c>T-1-floor(k*T/N)</c>, with the
    /// product taken in float32 exactly as stable-diffusion.cpp takes it. (For some N the rounded product lands just
    /// below an integer: sd.cpp then picks the next timestep up, e.g. 500 rather than 499 at N = 30, k = 15; A1111's
    /// float64 product does the same at other N, e.g. N = 38, k = 19.)
    /// </summary>
    public static double[] Simple(NoiseSchedule schedule, int steps)
    {
        CheckSteps(schedule, steps, schedule.TrainSteps, Scheduler.Simple);
        int trainSteps = schedule.TrainSteps;
        float stepFactor = (float)trainSteps / steps;
        var sigmas = new double[steps + 1];
        for (int k = 0; k < steps; k++)
            sigmas[k] = schedule.Sigmas[trainSteps - 1 - (int)(k * stepFactor)];
        return sigmas;
    }

    /// <summary>
    /// A1111 <c>ddim_scheduler</c> / ComfyUI <c>ddim_uniform</c>: timesteps <c>1, 1+c, ...</c> below T, c = T // N,
    /// descending. N = 1 is refused: those tools would run a single step from timestep 1 (sigma 0.04), which returns
    /// the scaled noise; use <see cref="Scheduler.Simple"/> or <see cref="Scheduler.Discrete"/> for one step.
    /// </summary>
    public static double[] DdimUniform(NoiseSchedule schedule, int steps)
    {
        ArgumentNullException.ThrowIfNull(schedule);
        if (steps == 1)
            throw new ArgumentOutOfRangeException(nameof(steps), steps,
                "The ddim_uniform scheduler needs at least 2 steps: with 1 it would start at timestep 1 and return the noise. Use simple or discrete for a single step.");
        CheckSteps(schedule, steps, schedule.TrainSteps, Scheduler.DdimUniform);
        int trainSteps = schedule.TrainSteps;
        int stride = Math.Max(trainSteps / steps, 1);
        int count = (trainSteps - 1 + stride - 1) / stride; // timesteps 1, 1 + stride, ... < T
        var sigmas = new double[count + 1];
        for (int k = 0; k < count; k++)
            sigmas[count - 1 - k] = schedule.Sigmas[1 + k * stride];
        return sigmas;
    }

    /// <summary>stable-diffusion.cpp <c>LCMScheduler</c>: <c>t_k = (50 - floor(k*50/N)) * (T/50) - 1</c>.</summary>
    public static double[] Lcm(NoiseSchedule schedule, int steps)
    {
        CheckSteps(schedule, steps, LcmOriginalSteps, Scheduler.Lcm);
        if (schedule.TrainSteps % LcmOriginalSteps != 0)
            throw new ArgumentException(
                $"The LCM spacing needs a training schedule whose length is a multiple of {LcmOriginalSteps}; this one has {schedule.TrainSteps}.",
                nameof(schedule));
        int stride = schedule.TrainSteps / LcmOriginalSteps;
        var sigmas = new double[steps + 1];
        for (int k = 0; k < steps; k++)
            sigmas[k] = schedule.Sigmas[(LcmOriginalSteps - k * LcmOriginalSteps / steps) * stride - 1];
        return sigmas;
    }

    /// <summary>
    /// Checks that <paramref name="sigmas"/> is something a sampler can walk: at least two values, all finite, strictly
    /// decreasing, the last one zero or positive (a partial schedule may stop above zero) and the others positive.
    /// </summary>
    /// <exception cref="ArgumentException">Names the first offending entry.</exception>
    public static void Validate(ReadOnlySpan<double> sigmas, string paramName)
    {
        if (sigmas.Length < 2)
            throw new ArgumentException($"A sampling schedule needs at least 2 sigmas (one step), got {sigmas.Length}.", paramName);
        for (int i = 0; i < sigmas.Length; i++)
        {
            double s = sigmas[i];
            bool last = i == sigmas.Length - 1;
            if (!double.IsFinite(s) || s < 0 || (s == 0 && !last))
                throw new ArgumentException(Format($"sigmas[{i}] = {s:R} is not a valid noise level: only the last sigma may be 0, none may be negative or non-finite."), paramName);
            if (i > 0 && !(s < sigmas[i - 1]))
                throw new ArgumentException(Format($"Sigmas must strictly decrease, but sigmas[{i - 1}] = {sigmas[i - 1]:R} and sigmas[{i}] = {s:R}."), paramName);
        }
    }

    private static void CheckSteps(NoiseSchedule schedule, int steps, int maxSteps, Scheduler scheduler)
    {
        ArgumentNullException.ThrowIfNull(schedule);
        if (steps < 1 || steps > maxSteps)
            throw new ArgumentOutOfRangeException(nameof(steps), steps,
                $"The {SchedulerNames.Name(scheduler)} scheduler takes 1 to {maxSteps} steps.");
    }

    private static string Format(FormattableString message) => message.ToString(CultureInfo.InvariantCulture);
}
