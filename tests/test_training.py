"""resnet_tf.training: the schedule, compilation and one short real training run."""

import keras
import numpy as np
import pytest

from resnet_tf import data, models, seed_everything, training


def test_step_schedule_divides_by_ten_at_half_and_three_quarters():
    schedule = training.learning_rate_schedule(0.1, 1000)
    assert isinstance(schedule, keras.optimizers.schedules.PiecewiseConstantDecay)
    values = [float(schedule(step)) for step in (0, 499, 500, 749, 750, 999)]
    np.testing.assert_allclose(values, [0.1, 0.1, 0.01, 0.01, 0.001, 0.001], rtol=1e-6)


def test_cosine_and_warmup():
    cosine = training.learning_rate_schedule(0.1, 100, kind="cosine", constant_steps=10)
    assert isinstance(cosine, training.WarmupSchedule)
    assert isinstance(cosine.then, keras.optimizers.schedules.CosineDecay)
    assert float(cosine(5)) == pytest.approx(0.01)
    assert float(cosine(50)) == pytest.approx(0.05, rel=1e-5)
    assert float(cosine(100)) == pytest.approx(0.0, abs=1e-7)
    assert float(training.learning_rate_schedule(0.3, 10, kind="constant")(9)) == (
        pytest.approx(0.3))
    with pytest.raises(ValueError, match="allowed: step, cosine, constant, onecycle"):
        training.learning_rate_schedule(0.1, 10, kind="linear")
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(cosine))
    assert restored.get_config() == cosine.get_config()
    assert [float(restored(t)) for t in (0, 9, 10, 99)] == [float(cosine(t))
                                                           for t in (0, 9, 10, 99)]


def _old_rates(schedule, total):
    return np.array([float(schedule(t)) for t in range(total + 2)])


@pytest.mark.parametrize("total, kind, warmup", [
    (1000, "step", 0), (1001, "step", 0), (7, "step", 0), (203, "step", 40),
    (97, "cosine", 0), (120, "cosine", 11), (50, "constant", 0), (50, "constant", 5),
])
def test_schedule_agrees_with_the_paper_schedule_at_every_step(total, kind, warmup):
    with pytest.warns(DeprecationWarning, match="learning_rate_schedule"):
        old = training.PaperSchedule(0.1, total, kind, warmup_steps=warmup)
    new = training.learning_rate_schedule(0.1, total, kind, constant_steps=warmup)
    np.testing.assert_allclose(_old_rates(new, total), _old_rates(old, total), rtol=1e-6)
    # to the last bit, so that the chapters' trainings keep their numbers
    np.testing.assert_array_equal(_old_rates(new, total), _old_rates(old, total))


@pytest.mark.parametrize("settings", [
    dict(n_train=50_000, depth=56),
    dict(n_train=50_000, depth=110),
    dict(n_train=50_000, depth=110, replicas=4),
    dict(n_train=5_000, replicas=8),
    dict(n_train=20_000, fast=True),
    dict(n_train=3_000, per_replica_batch=64, epochs=3, fast=True),
])
def test_schedule_agrees_with_the_reproduction_schedule_at_every_step(settings):
    from resnet_tf.reproduce import recipe

    p = recipe.plan(**settings)
    with pytest.warns(DeprecationWarning, match="schedule_for"):
        old = recipe.ReproSchedule.from_plan(p)
    new = recipe.schedule_for(p)
    if p.schedule == "step":  # piecewise: the whole run at once
        steps = np.arange(p.total_steps + 2)
        np.testing.assert_allclose(keras.ops.vectorized_map(new, steps),
                                   keras.ops.vectorized_map(old, steps), rtol=1e-6)
    else:  # step by step, as the optimizer calls it (a vectorised cos rounds differently)
        np.testing.assert_allclose(_old_rates(new, p.total_steps),
                                   _old_rates(old, p.total_steps), rtol=1e-6)


def test_compile_reads_logits_or_probabilities():
    probs = training.compile_model(models.mlp(1, output_dim=3, output_activation="softmax"), 1, 1)
    logits = training.compile_model(models.mlp(1, output_dim=3), 1, 1)
    assert probs.loss.from_logits is False and logits.loss.from_logits is True
    assert probs.optimizer.momentum == 0.9 and probs.optimizer.l2 == 1e-4


def test_compile_takes_a_schedule_object_and_the_reproduction_uses_it():
    from resnet_tf.reproduce import recipe

    custom = keras.optimizers.schedules.PiecewiseConstantDecay([5], [0.2, 0.02])
    model = training.compile_model(models.mlp(1, output_dim=3), 10, 1, schedule=custom,
                                   nesterov=True, steps_per_execution=2)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.2)  # custom(0)
    assert model.optimizer.nesterov is True
    plan = recipe.plan(1000, per_replica_batch=32, epochs=2, fast=True)
    net = recipe.compile_for(models.mlp(1, output_dim=3), plan)
    assert isinstance(net.optimizer, training.CoupledSGD) and net.optimizer.nesterov
    assert float(net.optimizer.learning_rate) == pytest.approx(
        float(recipe.schedule_for(plan)(0)))
    assert isinstance(net.loss, training.SmoothedCrossEntropy) and net.loss.from_logits


def test_label_smoothing_loss():
    loss = training.SmoothedCrossEntropy(0.1, from_logits=False)
    value = float(loss(np.array([0]), np.array([[0.9, 0.05, 0.05]], "float32")))
    target = np.array([0.9 + 0.1 / 3, 0.1 / 3, 0.1 / 3])
    expected = -(target * np.log([0.9, 0.05, 0.05])).sum()
    assert value == pytest.approx(expected, rel=1e-4)


def test_configure_performance_sets_mixed_policy():
    chosen = training.configure_performance(mixed_precision=True)
    try:
        assert chosen["mixed_precision"]
        assert keras.mixed_precision.global_policy().name == "mixed_float16"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_fit_learns_digits():
    (x, y), (xt, yt) = data.load("digits", size=8)
    x, xt = data.standardize(x, xt)
    model = models.cifar_resnet(8, width=8, input_shape=(8, 8, 1))
    seed_everything(0)
    history = training.fit(model, (x, y), validation=(xt, yt), epochs=3, batch_size=64,
                           lr=0.05, verbose=0)
    losses = history.history["loss"]
    assert len(losses) == 3 and losses[-1] < 0.5 * losses[0]
    assert history.history["accuracy"][-1] > 0.8
    assert "val_loss" in history.history


def test_fit_on_dataset_with_step_cap():
    (x, y), _ = data.load("spirals", n=256)
    ds = data.make_dataset(x, y, 32, training=True)
    model = models.mlp(2, width=8, output_dim=2)
    seed_everything(0)
    history = training.fit(model, ds, epochs=2, steps_per_epoch=3, verbose=0, lr=0.01)
    assert len(history.history["loss"]) == 2


def test_fit_leaves_the_process_random_state_alone():
    import random

    (x, y), _ = data.load("spirals", n=128)
    model = models.mlp(1, width=4, output_dim=2)
    seed_everything(5)
    python_state, numpy_state = random.getstate(), np.random.get_state()
    keras_draw = keras.random.uniform((3,), seed=None)
    seed_everything(5)
    training.fit(model, (x, y), epochs=1, batch_size=32, verbose=0, seed=11)
    assert random.getstate() == python_state
    after = np.random.get_state()
    assert all(np.array_equal(a, b) for a, b in zip(after, numpy_state, strict=True))
    np.testing.assert_array_equal(keras.random.uniform((3,), seed=None), keras_draw)


def test_fit_seed_sets_the_order_of_the_batches():
    (x, y), _ = data.load("spirals", n=128)

    def first_losses(seed: int) -> list:
        seed_everything(0)
        model = models.mlp(1, width=4, output_dim=2)
        history = training.fit(model, (x, y), epochs=2, batch_size=32, verbose=0, seed=seed)
        return history.history["loss"]

    assert first_losses(1) == first_losses(1)
    assert first_losses(1) != first_losses(2)


def test_fit_takes_an_optimizer_and_a_loss():
    (x, y), _ = data.load("spirals", n=128)
    model = models.mlp(1, width=4, output_dim=2)
    adam = keras.optimizers.Adam(3e-3)
    xent = keras.losses.SparseCategoricalCrossentropy(from_logits=True, name="my_loss")
    history = training.fit(model, (x, y), epochs=1, batch_size=32, verbose=0,
                           optimizer=adam, loss=xent)
    assert model.optimizer is adam and int(adam.iterations.numpy()) == len(x) // 32
    assert model.loss is xent and len(history.history["loss"]) == 1
    default = models.mlp(1, width=4, output_dim=2)
    training.fit(default, (x, y), epochs=1, batch_size=32, verbose=0)
    assert isinstance(default.optimizer, training.CoupledSGD)
    assert isinstance(default.loss, keras.losses.SparseCategoricalCrossentropy)


def test_schedule_boundaries_are_steps_not_fractions():
    with pytest.raises(ValueError, match="boundaries are steps"):
        training.learning_rate_schedule(0.1, 100, "step", boundaries=(0.5, 0.75))
    schedule = training.learning_rate_schedule(0.1, 100, "step", boundaries=(50, 75))
    rates = [float(schedule(t)) for t in (49, 50, 74, 75)]
    np.testing.assert_allclose(rates, [0.1, 0.01, 0.01, 0.001], rtol=1e-6)
