#!/usr/bin/python3
"""Independent NumPy oracles for kernelext/training, written from Keras 2.3.1's sources
(keras/optimizers.py, tf.keras.backend.binary_crossentropy, keras/metrics.py,
keras/utils/generic_utils.py Progbar, keras/callbacks/callbacks.py BaseLogger and ProgbarLogger).

    /usr/bin/python3 keras_oracle.py > golden.json

writes golden.json, which the Go tests read. Everything is float32, as TensorFlow computes it.

Why a re-implementation: these are Keras core 2.3 and TensorFlow, which Debian 12 does not
package (only keras-preprocessing and keras-applications are there, and the image oracles use
those directly). The replicas follow the sources line by line and do their arithmetic in NumPy.
"""
import io
import json
import sys

import numpy as np

f32 = np.float32


# ---------------------------------------------------------------------------------------------
# Optimizers (keras/optimizers.py, Keras 2.3.1), on loss = sum((p - c)**2), gradient 2 (p - c).

def adam(p0, c, steps, lr=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, decay=0.0):
    p = np.array(p0, dtype=f32)
    c = np.array(c, dtype=f32)
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    lr0, b1, b2, eps, dec = f32(lr), f32(beta_1), f32(beta_2), f32(epsilon), f32(decay)
    out = []
    for iterations in range(steps):
        g = f32(2) * (p - c)
        lr_ = lr0
        if decay > 0:
            lr_ = lr0 * (f32(1) / (f32(1) + dec * f32(iterations)))
        t = f32(iterations) + f32(1)
        lr_t = lr_ * (np.sqrt(f32(1) - np.power(b2, t)) / (f32(1) - np.power(b1, t)))
        m = (b1 * m) + (f32(1) - b1) * g
        v = (b2 * v) + (f32(1) - b2) * np.square(g)
        p = p - lr_t * m / (np.sqrt(v) + eps)
        out.append([float(x) for x in p])
    return out


def sgd(p0, c, steps, lr=0.01, momentum=0.0, nesterov=False, decay=0.0):
    p = np.array(p0, dtype=f32)
    c = np.array(c, dtype=f32)
    moment = np.zeros_like(p)
    lr0, mom, dec = f32(lr), f32(momentum), f32(decay)
    out = []
    for iterations in range(steps):
        g = f32(2) * (p - c)
        lr_ = lr0
        if decay > 0:
            lr_ = lr0 * (f32(1) / (f32(1) + dec * f32(iterations)))
        v = mom * moment - lr_ * g
        moment = v
        if nesterov:
            p = p + mom * v - lr_ * g
        else:
            p = p + v
        out.append([float(x) for x in p])
    return out


# ---------------------------------------------------------------------------------------------
# Losses and metrics.

def sigmoid_bce_from_logits(y, z):
    # tf.nn.sigmoid_cross_entropy_with_logits: max(z, 0) - z*y + log1p(exp(-|z|)).
    z = np.array(z, dtype=f32)
    y = np.array(y, dtype=f32)
    return np.maximum(z, f32(0)) - z * y + np.log1p(np.exp(-np.abs(z)))


def bce_clipped(y, p):
    p = np.clip(np.array(p, dtype=f32), f32(1e-7), f32(1) - f32(1e-7))
    y = np.array(y, dtype=f32)
    return -(y * np.log(p) + (f32(1) - y) * np.log(f32(1) - p))


def binary_accuracy(y, p):
    return np.equal(np.array(y, dtype=f32), np.round(np.array(p, dtype=f32))).astype(f32)


# ---------------------------------------------------------------------------------------------
# Logging: Progbar (generic_utils.py), ProgbarLogger and BaseLogger (callbacks.py), with the
# stateful metric (MeanMetricWrapper: total and count float32, result total / count).

class Clock:
    def __init__(self, step):
        self.calls = 0
        self.step = step

    def time(self):
        # A realistic epoch-seconds base, as time.time() gives: Progbar's first interval check
        # compares against 0.
        t = 1e9 + self.calls * self.step
        self.calls += 1
        return t


class Progbar:
    def __init__(self, out, clock, target, width=30, verbose=1, interval=0.05,
                 stateful_metrics=None, dynamic=False):
        self.out, self.clock = out, clock
        self.target, self.width, self.verbose, self.interval = target, width, verbose, interval
        self.stateful_metrics = set(stateful_metrics or [])
        self._dynamic_display = dynamic
        self._total_width = 0
        self._seen_so_far = 0
        self._values = {}
        self._values_order = []
        self._start = clock.time()
        self._last_update = 0

    def update(self, current, values=None):
        values = values or []
        for k, v in values:
            if k not in self._values_order:
                self._values_order.append(k)
            if k not in self.stateful_metrics:
                if k not in self._values:
                    self._values[k] = [v * (current - self._seen_so_far),
                                       current - self._seen_so_far]
                else:
                    self._values[k][0] += v * (current - self._seen_so_far)
                    self._values[k][1] += (current - self._seen_so_far)
            else:
                self._values[k] = [v, 1]
        self._seen_so_far = current

        now = self.clock.time()
        info = ' - %.0fs' % (now - self._start)
        if self.verbose == 1:
            if (now - self._last_update < self.interval and
                    self.target is not None and current < self.target):
                return
            prev_total_width = self._total_width
            if self._dynamic_display:
                self.out.write('\b' * prev_total_width)
                self.out.write('\r')
            else:
                self.out.write('\n')
            numdigits = int(np.floor(np.log10(self.target))) + 1
            barstr = '%%%dd/%d [' % (numdigits, self.target)
            bar = barstr % current
            prog = float(current) / self.target
            prog_width = int(self.width * prog)
            if prog_width > 0:
                bar += ('=' * (prog_width - 1))
                if current < self.target:
                    bar += '>'
                else:
                    bar += '='
            bar += ('.' * (self.width - prog_width))
            bar += ']'
            self._total_width = len(bar)
            self.out.write(bar)
            if current:
                time_per_unit = (now - self._start) / current
            else:
                time_per_unit = 0
            if self.target is not None and current < self.target:
                eta = time_per_unit * (self.target - current)
                if eta > 3600:
                    eta_format = ('%d:%02d:%02d' % (eta // 3600, (eta % 3600) // 60, eta % 60))
                elif eta > 60:
                    eta_format = '%d:%02d' % (eta // 60, eta % 60)
                else:
                    eta_format = '%ds' % eta
                info = ' - ETA: %s' % eta_format
            else:
                if time_per_unit >= 1:
                    info += ' %.0fs/step' % time_per_unit
                elif time_per_unit >= 1e-3:
                    info += ' %.0fms/step' % (time_per_unit * 1e3)
                else:
                    info += ' %.0fus/step' % (time_per_unit * 1e6)
            for k in self._values_order:
                info += ' - %s:' % k
                if isinstance(self._values[k], list):
                    avg = np.mean(self._values[k][0] / max(1, self._values[k][1]))
                    if abs(avg) > 1e-3:
                        info += ' %.4f' % avg
                    else:
                        info += ' %.4e' % avg
                else:
                    info += ' %s' % self._values[k]
            self._total_width += len(info)
            if prev_total_width > self._total_width:
                info += (' ' * (prev_total_width - self._total_width))
            if self.target is not None and current >= self.target:
                info += '\n'
            self.out.write(info)
        elif self.verbose == 2:
            if self.target is None or current >= self.target:
                for k in self._values_order:
                    info += ' - %s:' % k
                    avg = np.mean(self._values[k][0] / max(1, self._values[k][1]))
                    if avg > 1e-3:
                        info += ' %.4f' % avg
                    else:
                        info += ' %.4e' % avg
                info += '\n'
                self.out.write(info)
        self._last_update = now


def fit_log(scenario):
    """Replays fit_generator's callbacks on given per-batch results. Clock steps are powers of
    two or their multiples so that float seconds and Go's integer nanoseconds agree exactly.

    scenario: epochs, steps, verbose, dynamic, clock_step, metrics (names after 'loss'),
    batches[epoch][step] = {size, loss, sums}, val[epoch] = [val_loss, val_metric...] or None.
    Returns the printed text and the History.
    """
    out = io.StringIO()
    clock = Clock(scenario['clock_step'])
    names = ['loss'] + scenario['metrics']
    stateful = scenario['metrics']
    has_val = scenario['val'][0] is not None
    params_metrics = names + (['val_' + n for n in names] if has_val else [])
    history = {}
    epochs, steps, verbose = scenario['epochs'], scenario['steps'], scenario['verbose']
    for epoch in range(epochs):
        # model.reset_metrics()
        totals = [f32(0) for _ in stateful]
        count = f32(0)
        # BaseLogger.on_epoch_begin
        seen_b, totals_b = 0, {}
        # ProgbarLogger.on_epoch_begin
        if verbose:
            out.write('Epoch %d/%d\n' % (epoch + 1, epochs))
            progbar = Progbar(out, clock, target=steps, verbose=verbose,
                              stateful_metrics=stateful, dynamic=scenario['dynamic'])
        seen = 0
        log_values = []
        for b in scenario['batches'][epoch]:
            # ProgbarLogger.on_batch_begin
            if seen < steps:
                log_values = []
            size = b['size']
            loss = f32(b['loss'])
            logs = {'batch': 0, 'size': size, 'loss': loss}
            for i, n in enumerate(stateful):
                totals[i] = totals[i] + f32(b['sums'][i])
                if i == 0:
                    count = count + f32(size)
                logs[n] = totals[i] / count
            # BaseLogger.on_batch_end
            seen_b += size
            for k, v in logs.items():
                if k in ('batch', 'size'):
                    continue
                if k in stateful:
                    totals_b[k] = v
                elif k in totals_b:
                    totals_b[k] += v * size
                else:
                    totals_b[k] = v * size
            # ProgbarLogger.on_batch_end (count_mode='steps')
            seen += 1
            for k in params_metrics:
                if k in logs:
                    log_values.append((k, logs[k]))
            if verbose and seen < steps:
                progbar.update(seen, log_values)
        epoch_logs = {}
        if has_val:
            val = scenario['val'][epoch]
            epoch_logs['val_loss'] = float(val[0])
            for i, n in enumerate(stateful):
                epoch_logs['val_' + n] = np.float64(val[1 + i])
        # BaseLogger.on_epoch_end
        for k in params_metrics:
            if k in totals_b:
                epoch_logs[k] = totals_b[k] if k in stateful else totals_b[k] / seen_b
        # ProgbarLogger.on_epoch_end
        for k in params_metrics:
            if k in epoch_logs:
                log_values.append((k, epoch_logs[k]))
        if verbose:
            progbar.update(seen, log_values)
        # History.on_epoch_end
        for k, v in epoch_logs.items():
            history.setdefault(k, []).append(float(v))
    return out.getvalue().replace('\b', ''), history


def main():
    rng = np.random.RandomState(7)
    golden = {}

    p0 = rng.uniform(-1, 1, 6).astype(f32)
    c = rng.uniform(-1, 1, 6).astype(f32)
    # Tiny gradients: the regime where epsilon's placement matters.
    c_tiny = (p0 + rng.choice([-2, -1, 1, 2], 6).astype(f32) * f32(2 ** -24)).astype(f32)
    golden['optimizers'] = []
    for name, kw, cc in [
        ('adam_default', {}, c),
        ('adam_tiny_gradients', {}, c_tiny),
        ('adam_lr1e-5_decay', {'lr': 1e-5, 'decay': 0.01}, c),
        ('adam_custom', {'lr': 0.01, 'beta_1': 0.8, 'beta_2': 0.99, 'epsilon': 1e-4}, c),
    ]:
        golden['optimizers'].append({'name': name, 'kind': 'adam', 'args': kw, 'p0': p0.tolist(),
                                     'c': cc.tolist(), 'steps': 8, 'trajectory': adam(p0, cc, 8, **kw)})
    for name, kw in [
        ('sgd_plain', {'lr': 0.1}),
        ('sgd_momentum', {'lr': 0.05, 'momentum': 0.9}),
        ('sgd_nesterov_decay', {'lr': 0.05, 'momentum': 0.9, 'nesterov': True, 'decay': 0.1}),
    ]:
        golden['optimizers'].append({'name': name, 'kind': 'sgd', 'args': kw, 'p0': p0.tolist(),
                                     'c': c.tolist(), 'steps': 8, 'trajectory': sgd(p0, c, 8, **kw)})

    z = np.array([-40, -17, -16, -5, -0.3, 0, 1e-3, 0.3, 2, 5, 15.9, 16.2, 17, 40], dtype=f32)
    y = np.array([0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 1, 0, 1, 1], dtype=f32)
    sig = (f32(1) / (f32(1) + np.exp(-z))).astype(f32)
    p = np.array([0, 1e-9, 1e-7, 0.2, 0.49999997, 0.5, 0.50000006, 0.9, 1 - 1e-7, 1, 0.5, 0.75, 0.25, 1],
                 dtype=f32)
    py = np.array([0, 0, 1, 1, 1, 1, 0, 1, 1, 0, 0, 1, 0, 1], dtype=f32)
    golden['losses'] = {
        'z': z.tolist(), 'y': y.tolist(), 'p': p.tolist(), 'py': py.tolist(),
        'bce_logits': sigmoid_bce_from_logits(y, z).tolist(),
        'bce_clipped_sigmoid': bce_clipped(y, sig).tolist(),
        'bce_clipped_p': bce_clipped(py, p).tolist(),
        'accuracy_p': binary_accuracy(py, p).tolist(),
        'round_in': [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.49999997, 2.5000002, -0.50000006, 3.7],
        'round_out': np.round(np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.49999997, 2.5000002,
                                        -0.50000006, 3.7], dtype=f32)).tolist(),
    }

    golden['logs'] = []
    for name, epochs, steps, verbose, dynamic, clock_step, with_val in [
        ('lines_val', 2, 5, 1, False, 0.75, True),
        ('inplace_val', 2, 5, 1, True, 0.75, True),
        ('lines_fast_noval', 1, 12, 1, False, 2 ** -8, False),
        ('slow_eta_hours', 1, 3, 1, False, 2500.0, True),
        ('verbose2', 2, 4, 2, False, 0.25, True),
    ]:
        batches, vals = [], []
        for e in range(epochs):
            eb = []
            for s in range(steps):
                size = 32 if s < steps - 1 else 17
                loss = f32(rng.uniform(0.05, 0.9))
                if name == 'lines_fast_noval' and s == 3:
                    loss = f32(4e-4)
                correct = int(rng.randint(0, size + 1))
                eb.append({'size': size, 'loss': float(loss), 'sums': [float(correct)]})
            batches.append(eb)
            vals.append([float(f32(rng.uniform(0.1, 0.7))), float(f32(rng.randint(0, 961)) / f32(960))]
                        if with_val else None)
        scenario = {'name': name, 'epochs': epochs, 'steps': steps, 'verbose': verbose, 'dynamic': dynamic,
                    'clock_step': clock_step, 'metrics': ['accuracy'], 'batches': batches, 'val': vals}
        text, history = fit_log(scenario)
        scenario['text'] = text
        scenario['history'] = history
        golden['logs'].append(scenario)

    json.dump(golden, sys.stdout, indent=1)
    sys.stdout.write('\n')


if __name__ == '__main__':
    main()
